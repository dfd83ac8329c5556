"""Runs left behind by a killed process: found at the start of the next command, marked failed, slots freed."""

from __future__ import annotations

import os
import socket
import subprocess
import uuid

import dagster as dg

from carprice.config import Settings
from carprice.runs.instance import HOST_TAG, PID_TAG, prepare_dagster_home, reap_dead_runs


def dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def add_run(instance: dg.DagsterInstance, pid: int, host: str = socket.gethostname(),
            status: dg.DagsterRunStatus = dg.DagsterRunStatus.STARTED) -> str:
    run_id = str(uuid.uuid4())
    instance.add_run(dg.DagsterRun(job_name="batch_job", run_id=run_id, status=status,
                                   tags={PID_TAG: str(pid), HOST_TAG: host}))
    return run_id


def test_dead_runs_are_failed_and_their_warehouse_slot_freed(tmp_path, monkeypatch):
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    home = prepare_dagster_home(Settings(data_dir=tmp_path / "data", dagster_home=tmp_path / "home"))
    instance = dg.DagsterInstance.from_config(str(home))
    storage = instance.event_log_storage
    storage.set_concurrency_slots("warehouse", 1)
    dead = add_run(instance, dead_pid())
    alive = add_run(instance, os.getpid())
    elsewhere = add_run(instance, dead_pid(), host="another-machine")
    assert storage.claim_concurrency_slot("warehouse", dead, "raw_listings").is_claimed
    assert not storage.claim_concurrency_slot("warehouse", alive, "raw_listings").is_claimed, "the dead run holds it"

    assert reap_dead_runs(instance) == [dead]
    assert instance.get_run_by_id(dead).status == dg.DagsterRunStatus.FAILURE
    assert instance.get_run_by_id(alive).status == dg.DagsterRunStatus.STARTED, "a live process keeps its run"
    assert instance.get_run_by_id(elsewhere).status == dg.DagsterRunStatus.STARTED, "another machine's run is not ours"
    assert dead not in storage.get_concurrency_run_ids()
    assert storage.claim_concurrency_slot("warehouse", alive, "raw_listings").is_claimed, "the slot is free again"
    assert reap_dead_runs(instance) == [], "nothing left to reap"
