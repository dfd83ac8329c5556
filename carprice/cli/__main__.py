"""``python -m carprice.cli``: the same as the ``carprice`` command."""

import sys

from carprice.cli import main

sys.exit(main())
