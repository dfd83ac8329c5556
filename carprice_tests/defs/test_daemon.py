"""The real Dagster daemon on a persistent instance: a batch appearing in the landing zone ends in valuations
and a monitoring report with nobody starting a run."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from carprice.config import PROJECT_DIR
from carprice.runs.instance import DAGSTER_YAML

# Real crawls, Dagster runs or processes: the integration tier.
pytestmark = [pytest.mark.integration, pytest.mark.slow]

TIMEOUT_S = 420


@pytest.fixture
def daemon(settings):
    """`dagster-daemon run` on this test's instance and data folder, stopped (with its runs) afterwards."""
    settings.dagster_home.mkdir(parents=True)
    (settings.dagster_home / "dagster.yaml").write_text(DAGSTER_YAML)
    env = {**os.environ, **settings.to_env()}
    log = (settings.dagster_home / "daemon.log").open("w")
    proc = subprocess.Popen([str(Path(sys.executable).with_name("dagster-daemon")), "run", "-w",
                             str(PROJECT_DIR / "workspace.yaml")], cwd=PROJECT_DIR, env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    yield proc
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
    log.close()


def _runs(home: Path) -> list[dg.DagsterRun]:
    with dg.DagsterInstance.from_config(str(home)) as instance:
        return list(instance.get_runs())


def test_a_landed_batch_becomes_valuations_without_a_manual_step(settings, crawled_batch, daemon):
    # A spider (or anything else) lands a batch folder: the only thing this test does.
    target = settings.landing_dir / crawled_batch.source / crawled_batch.batch_id
    tmp = target.with_name("." + target.name)
    shutil.copytree(crawled_batch.path, tmp)
    tmp.rename(target)

    deadline = time.monotonic() + TIMEOUT_S
    runs: list[dg.DagsterRun] = []
    while time.monotonic() < deadline:
        runs = _runs(settings.dagster_home)
        if any(r.status == dg.DagsterRunStatus.FAILURE for r in runs):
            break
        if {r.job_name for r in runs if r.status == dg.DagsterRunStatus.SUCCESS} >= {"batch_job", "training_job"}:
            break
        time.sleep(3)
    log = (settings.dagster_home / "daemon.log").read_text()[-4000:]
    # The daily crawl is RUNNING too: if 06:00 UTC falls in this window it adds a crawl_job run.
    runs = [r for r in runs if r.job_name != "crawl_job"]
    by_job = {r.job_name: r for r in runs}
    assert set(by_job) == {"batch_job", "training_job"}, (runs, log)
    assert all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs), (runs, log)
    assert by_job["batch_job"].tags["dagster/sensor_name"] == "landing_sensor"
    assert by_job["batch_job"].tags["dagster/partition"] == crawled_batch.batch_id
    assert by_job["training_job"].tags["dagster/sensor_name"] == "retraining_sensor"
    assert by_job["training_job"].tags["carprice/trigger"] == "no_champion"

    with duckdb.connect(str(settings.snapshot_path), read_only=True) as con:
        valued, version = con.execute("SELECT count(*), any_value(model_version) FROM listing_valuations").fetchone()
        champion = con.execute("SELECT version FROM model_registry WHERE status = 'champion'").fetchone()[0]
    assert valued > 1000 and version == champion
