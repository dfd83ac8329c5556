"""Operator's test: SIGKILL a real `carprice run` while its batch run holds the warehouse; the next run finishes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import duckdb
import pytest

pytestmark = pytest.mark.integration


def test_a_run_killed_while_it_holds_the_warehouse_does_not_block_the_next(tmp_path):
    data = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARPRICE_") and k != "DAGSTER_HOME"}
    carprice = str(Path(sys.executable).with_name("carprice"))
    base = [carprice, "run", "--data-dir", str(data), "--listings", "600", "--seed", "3"]
    proc = subprocess.Popen([*base, "--day", "40"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    holder, instance, deadline = None, None, time.monotonic() + 300
    try:
        while holder is None:
            assert proc.poll() is None, "the run finished before it could be killed"
            assert time.monotonic() < deadline, "the batch run never took the warehouse slot"
            # Opened once the crawl has landed its batch: the run's instance storage exists by then.
            if instance is None and any(not p.name.startswith(".") for p in data.glob("landing/*/*")):
                instance = dg.DagsterInstance.from_config(str(data / "dagster"))
            if instance is not None:
                holders = instance.event_log_storage.get_concurrency_run_ids()
                holder = next(iter(holders)) if holders else None
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert instance.get_run_by_id(holder).status == dg.DagsterRunStatus.STARTED, "killed mid-run: left STARTED"

    started = time.monotonic()
    second = subprocess.run([*base, "--day", "41"], env=env, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stdout[-2000:] + second.stderr[-2000:]
    assert f"run {holder[:8]} was left unfinished by a process that is gone" in second.stdout + second.stderr
    assert "batch accepted" in second.stdout, "the next day's batch went all the way through"
    assert time.monotonic() - started < 300
    assert instance.get_run_by_id(holder).status == dg.DagsterRunStatus.FAILURE
    # The killed run's batch was not lost: the landing sensor tried it again, so both days have a status.
    killed_batch = instance.get_run_by_id(holder).tags["dagster/partition"]
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        statuses = dict(con.execute("SELECT batch_id, status FROM batch_status").fetchall())
    assert len(statuses) == 2 and statuses[killed_batch] == "accepted", statuses
