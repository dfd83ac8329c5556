"""The project's own Dagster instance: its home folder and dagster.yaml, inside the installation's data folder."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from pathlib import Path

import dagster as dg

from carprice.config import ENV_VARS, Settings
from carprice.processes import pid_alive

# Runs that carprice executes in its own process carry that process's id and host, so a later command
# can tell a run that is still going from one whose process was killed (SIGKILL, OOM, power cut).
PID_TAG, HOST_TAG = "carprice/pid", "carprice/host"
_UNFINISHED = [dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED]

_WRITTEN_BY_CARPRICE = "# Written by carprice"
DAGSTER_YAML = _WRITTEN_BY_CARPRICE + """: the project's own Dagster instance (runs, events, schedules).
telemetry:
  enabled: false
# The UI's first-visit community modal would cover the lineage page of every new installation.
nux:
  enabled: false
concurrency:
  pools:
    # DuckDB takes one writer at a time: assets that write share the "warehouse" pool.
    default_limit: 1
# Under `carprice ui` the daemon fails runs whose worker died (killed, OOM) and frees the pool slots of
# finished runs, so a dead run never keeps the warehouse; commands do the same at start (reap_dead_runs).
run_monitoring:
  enabled: true
  start_timeout_seconds: 180
  cancel_timeout_seconds: 180
  max_resume_run_attempts: 0
  poll_interval_seconds: 30
  free_slots_after_run_end_seconds: 30
"""


def prepare_dagster_home(settings: Settings) -> Path:
    """Create the Dagster home with its dagster.yaml and point DAGSTER_HOME at it."""
    home = settings.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    # An instance file carprice wrote earlier follows the current one; one a person wrote is theirs.
    if not config.exists() or (config.read_text(encoding="utf-8").startswith(_WRITTEN_BY_CARPRICE)
                               and config.read_text(encoding="utf-8") != DAGSTER_YAML):
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


class PoolBusyError(RuntimeError):
    """A live run kept the warehouse pool past the wait; names it."""


def pool_holders(instance: dg.DagsterInstance) -> list[dg.DagsterRun]:
    """The unfinished runs holding a concurrency slot now."""
    runs = (instance.get_run_by_id(run_id) for run_id in instance.event_log_storage.get_concurrency_run_ids())
    return [run for run in runs if run is not None and not run.is_finished]


def describe_run(run: dg.DagsterRun) -> str:
    """A run as an operator finds it: id, job, partition and the process executing it."""
    where = f", process {run.tags[PID_TAG]} on {run.tags.get(HOST_TAG, '?')}" if PID_TAG in run.tags else ""
    partition = f" [{run.tags['dagster/partition']}]" if "dagster/partition" in run.tags else ""
    return f"run {run.run_id} ({run.job_name}{partition}, {run.status.value}{where})"


def wait_for_pool(instance: dg.DagsterInstance, timeout_s: float, progress: Callable[[str], object] = print,
                  poll_s: float = 1.0) -> None:
    """Return once no live run holds a pool slot; PoolBusyError naming the holders after ``timeout_s``.

    Dagster's own wait for a slot has no limit, so a command checks first and ends with an error instead.
    """
    deadline, told = time.monotonic() + timeout_s, False
    while True:
        # Reaping also frees the slots a finished run still holds, which Dagster's own wait would sit on.
        reap_dead_runs(instance)
        holders = pool_holders(instance)
        if not holders:
            return
        if time.monotonic() >= deadline:
            raise PoolBusyError(f"the warehouse is still in use after {timeout_s:.0f} s by "
                                + "; ".join(describe_run(r) for r in holders)
                                + ": wait for it to finish, or stop it (Dagster UI: Runs -> Terminate)")
        if not told:
            progress(f"    waiting for {'; '.join(describe_run(r) for r in holders)} to release the warehouse")
            told = True
        time.sleep(poll_s)


def prepare_sources(settings: Settings, instance: dg.DagsterInstance) -> dict:
    """The installation's sources, checked before anything runs: the default sources.toml is written when there is
    none, and every source gets its partition (the UI can then launch a crawl of any of them)."""
    from carprice.defs.partitions import add_source_partitions
    from carprice.sources import load_sources, write_default

    write_default(settings.layout.sources_path)
    sources = load_sources(settings.layout.sources_path)
    add_source_partitions(instance, sources)
    return sources
