"""Runs left behind by a killed process: found at the start of the next command, marked failed, slots freed."""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import uuid

import dagster as dg
import pytest

from carprice.config import Settings
from carprice.runs.instance import (
    DAGSTER_YAML,
    HOST_TAG,
    PID_TAG,
    PoolBusyError,
    prepare_dagster_home,
    reap_dead_runs,
    wait_for_pool,
)


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


def slot_instance(tmp_path, monkeypatch) -> dg.DagsterInstance:
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    home = prepare_dagster_home(Settings(data_dir=tmp_path / "data", dagster_home=tmp_path / "home"))
    instance = dg.DagsterInstance.from_config(str(home))
    instance.event_log_storage.set_concurrency_slots("warehouse", 1)
    return instance


def test_a_live_run_holding_the_warehouse_past_the_wait_is_named_in_the_error(tmp_path, monkeypatch):
    instance = slot_instance(tmp_path, monkeypatch)
    holder = add_run(instance, os.getpid())
    assert instance.event_log_storage.claim_concurrency_slot("warehouse", holder, "clean_listings").is_claimed
    said = []
    with pytest.raises(PoolBusyError, match=f"still in use after 1 s by run {holder} .*process {os.getpid()}"):
        wait_for_pool(instance, 1, said.append, poll_s=0.1)
    assert len(said) == 1 and holder in said[0], "the wait is announced once"


def test_the_wait_ends_when_the_holder_finishes(tmp_path, monkeypatch):
    instance = slot_instance(tmp_path, monkeypatch)
    holder = add_run(instance, os.getpid())
    instance.event_log_storage.claim_concurrency_slot("warehouse", holder, "clean_listings")

    def finish():
        instance.report_run_failed(instance.get_run_by_id(holder), message="done")
        instance.event_log_storage.free_concurrency_slots_for_run(holder)

    timer = threading.Timer(0.5, finish)
    timer.start()
    wait_for_pool(instance, 30, lambda _: None, poll_s=0.1)
    assert instance.get_run_by_id(holder).is_finished, "the wait lasted until the holder finished"
    timer.join()
    assert not instance.event_log_storage.get_concurrency_run_ids()


def test_the_instance_file_follows_carprice_but_a_hand_written_one_is_kept(tmp_path, monkeypatch):
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    settings = Settings(data_dir=tmp_path / "data", dagster_home=tmp_path / "home")
    config = settings.dagster_home / "dagster.yaml"
    config.parent.mkdir(parents=True)
    config.write_text("# Written by carprice: an older version\ntelemetry:\n  enabled: false\n")
    prepare_dagster_home(settings)
    assert config.read_text() == DAGSTER_YAML and "run_monitoring" in DAGSTER_YAML
    config.write_text("# ours\ntelemetry:\n  enabled: false\n")
    prepare_dagster_home(settings)
    assert config.read_text().startswith("# ours")
    dg.DagsterInstance.from_config(str(settings.dagster_home))


def test_the_ui_shows_no_first_visit_modal_on_our_instance(tmp_path, monkeypatch):
    """Dagster's community modal would cover the lineage page of every fresh installation (the UI asks the
    instance through GraphQL's shouldShowNux, which is false when the instance disables it)."""
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    home = prepare_dagster_home(Settings(data_dir=tmp_path / "data", dagster_home=tmp_path / "home"))
    instance = dg.DagsterInstance.from_config(str(home))
    assert not instance.nux_enabled
