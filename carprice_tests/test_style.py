"""The code stays clean under the project's ruff configuration (pyproject.toml), as CI runs it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from carprice.config import PROJECT_DIR


def test_ruff_finds_nothing():
    ruff = Path(sys.executable).with_name("ruff")
    proc = subprocess.run([str(ruff), "check", "--output-format", "concise", "."], cwd=PROJECT_DIR,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
