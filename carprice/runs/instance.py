"""The project's own Dagster instance: its home folder and dagster.yaml, inside the installation's data folder."""

from __future__ import annotations

import os
from pathlib import Path

from carprice.config import ENV_VARS, Settings

DAGSTER_YAML = """# Written by carprice: the project's own Dagster instance (runs, events, schedules).
telemetry:
  enabled: false
concurrency:
  pools:
    # DuckDB takes one writer at a time: assets that write share the "warehouse" pool.
    default_limit: 1
"""


def prepare_dagster_home(settings: Settings) -> Path:
    """Create the Dagster home with its dagster.yaml and point DAGSTER_HOME at it."""
    home = settings.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        config.write_text(DAGSTER_YAML, encoding="utf-8")
    os.environ[ENV_VARS["dagster_home"]] = str(home)
    return home
