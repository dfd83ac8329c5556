"""The README's main command, run for real in a temporary folder: crawl, ingest, train, value, summarize."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import duckdb
import pytest

# Real crawls, Dagster runs or processes: the integration tier.
pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_carprice_run_goes_end_to_end(tmp_path, monkeypatch):
    home = tmp_path / "dagster_home"
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    carprice = Path(sys.executable).with_name("carprice")
    proc = subprocess.run([str(carprice), "run", "--listings", "1500", "--day", "12", "--seed", "5",
                           "--data-dir", str(tmp_path / "data"), "--json"],
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout[proc.stdout.index("{"):])
    assert summary["scraped"] > 1300 and summary["valued"] > 1200
    assert summary["accepted"] + summary["excluded"] == summary["scraped"]
    assert summary["status"] == "accepted" and summary["promoted"]
    assert set(summary["metrics"]) == {"mae", "median_ape", "mape", "r2", "n", "interval_coverage"}
    assert summary["metrics"]["mae"] < summary["baselines"]["linear_ridge"]
    assert "no champion model yet" in summary["trained_because"]

    with duckdb.connect(summary["snapshot"], read_only=True) as con:
        assert con.execute("SELECT count(*) FROM listing_valuations").fetchone()[0] == summary["valued"]
        assert con.execute("SELECT version FROM model_registry WHERE status = 'champion'").fetchone()[0] \
            == summary["model_version"]
        assert con.execute("SELECT kind, served_by FROM retraining_requests").fetchall() == [
            ("no_champion", summary["model_version"])]

    monkeypatch.setenv("DAGSTER_HOME", str(home))
    instance = dg.DagsterInstance.get()
    runs = {r.job_name: r for r in instance.get_runs()}
    assert set(runs) == {"crawl_job", "batch_job", "training_job"}
    assert all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs.values())
    # Each run was requested by the project's own schedule or sensor, and is tagged like a daemon's run.
    assert runs["crawl_job"].tags["dagster/schedule_name"] == "crawl_automarkt"
    assert runs["batch_job"].tags["dagster/sensor_name"] == "landing_sensor"
    assert runs["training_job"].tags["dagster/sensor_name"] == "retraining_sensor"
    assert runs["training_job"].tags["carprice/trigger"] == "no_champion"
    assert instance.get_latest_materialization_event(dg.AssetKey("listing_valuations")) is not None
    assert instance.get_dynamic_partitions("batches") == [summary["batch_id"]]


def test_several_days_with_a_broken_first_batch(tmp_path):
    """Day 12's site is broken on a fresh folder: quarantined with alerts; day 13 trains the first model."""
    carprice = Path(sys.executable).with_name("carprice")
    proc = subprocess.run([str(carprice), "run", "--days", "3", "--listings", "1500", "--day", "14", "--seed", "5",
                           "--faults", "prices_x100@12", "--data-dir", str(tmp_path / "data"), "--json"],
                          env={**os.environ, "DAGSTER_HOME": str(tmp_path / "home")}, capture_output=True,
                          text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    days = json.loads(proc.stdout[proc.stdout.index("["):])
    assert [(d["day"], d["status"]) for d in days] == [(12, "quarantined"), (13, "accepted"), (14, "accepted")]
    assert "out of plausible range: market_price" in days[0]["failed_checks"]["values_within_contract"] \
        and days[0]["valued"] == 0
    assert days[1]["trigger"] == "no_champion" and days[1]["promoted"] and days[1]["valued"] > 1000
    assert days[2]["monitoring"]["status"] == "monitored" and days[2]["monitoring"]["n_fresh"] > 0
    assert "day 12 (2026-01-13):" in proc.stderr, "progress as it goes"
    assert "sensor landing_sensor -> batch_job" in proc.stderr, "progress as it goes"
    with duckdb.connect(str(tmp_path / "data" / "warehouse-snapshot.duckdb"), read_only=True) as con:
        kinds = dict(con.execute("SELECT kind, count(*) FROM alerts GROUP BY kind").fetchall())
        assert kinds["batch_quarantined"] == 1 and kinds["check_failed"] >= 1
        assert con.execute("SELECT count(*) FROM monitoring_reports").fetchone()[0] == 1

    # The market only moves forward: simulating days before the newest listing is refused, nothing runs.
    back = subprocess.run([str(carprice), "run", "--days", "2", "--day", "13", "--listings", "1500", "--seed", "5",
                           "--data-dir", str(tmp_path / "data")], env={**os.environ, "DAGSTER_HOME": str(
                               tmp_path / "home")}, capture_output=True, text=True, timeout=120)
    assert back.returncode == 2 and "already holds listings from 2026-01-15 (market day 14)" in back.stderr
    assert "use --day 15 or later" in back.stderr


@pytest.mark.parametrize(("args", "message"), [
    (["--days", "3", "--demo"], "--demo needs at least 6 days"),
    (["--shifts", "truck+30%@4"], "unknown segment 'truck'"),
    (["--faults", "prices_x100@soon"], "the day after '@' must be a whole number"),
    (["--faults", "teleport"], "unknown fault 'teleport'"),
    (["--days", "0"], "days must be at least 1"),
])
def test_carprice_run_refuses_bad_options_clearly(tmp_path, args, message):
    carprice = Path(sys.executable).with_name("carprice")
    proc = subprocess.run([str(carprice), "run", *args, "--data-dir", str(tmp_path)],
                          env={**os.environ, "DAGSTER_HOME": str(tmp_path / "home")},
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert message in proc.stderr
