"""The project's own Dagster instance: its home folder and dagster.yaml, inside the installation's data folder."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import dagster as dg

from carprice.config import ENV_VARS, Settings
from carprice.processes import pid_alive

# Runs that carprice executes in its own process carry that process's id and host, so a later command
# can tell a run that is still going from one whose process was killed (SIGKILL, OOM, power cut).
PID_TAG, HOST_TAG = "carprice/pid", "carprice/host"
_UNFINISHED = [dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED]

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


def process_tags() -> dict[str, str]:
    """The tags naming this process as the one executing a run."""
    return {PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname()}


def reap_dead_runs(instance: dg.DagsterInstance) -> list[str]:
    """Mark failed the unfinished runs whose executing process on this machine is gone, and free the pool
    slots of every finished run that still holds one; returns the ids of the runs marked failed.

    A killed run otherwise stays STARTED with its slot in the ``warehouse`` pool, and every later run waits
    for that slot forever.
    """
    host, reaped = socket.gethostname(), []
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=_UNFINISHED)):
        pid = run.tags.get(PID_TAG)
        if run.tags.get(HOST_TAG) != host or not pid or not pid.isdigit() or pid_alive(int(pid)):
            continue
        instance.report_run_failed(run, message=f"the process ({pid}) executing this run is gone (killed or "
                                                "crashed); marked failed by carprice, its pool slots freed")
        reaped.append(run.run_id)
    storage = instance.event_log_storage
    for run_id in storage.get_concurrency_run_ids():
        run = instance.get_run_by_id(run_id)
        if run is None or run.is_finished:
            storage.free_concurrency_slots_for_run(run_id)
    return reaped
