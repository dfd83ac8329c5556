"""The README's main command, run for real in a temporary folder: crawl, ingest, train, value, summarize."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import duckdb


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
    assert set(summary["metrics"]) == {"mae_eur", "median_ape", "r2", "n", "interval_coverage"}
    assert summary["metrics"]["mae_eur"] < summary["baselines"]["linear_ridge"]

    with duckdb.connect(summary["snapshot"], read_only=True) as con:
        assert con.execute("SELECT count(*) FROM listing_valuations").fetchone()[0] == summary["valued"]
        assert con.execute("SELECT version FROM model_registry WHERE status = 'champion'").fetchone()[0] \
            == summary["model_version"]

    monkeypatch.setenv("DAGSTER_HOME", str(home))
    instance = dg.DagsterInstance.get()
    runs = instance.get_runs()
    assert {r.job_name for r in runs} == {"crawl_job", "batch_job"}
    assert all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs)
    assert instance.get_latest_materialization_event(dg.AssetKey("listing_valuations")) is not None
    assert instance.get_dynamic_partitions("batches") == [summary["batch_id"]]


def test_carprice_run_with_an_unknown_source_fails_clearly(tmp_path):
    carprice = Path(sys.executable).with_name("carprice")
    proc = subprocess.run([str(carprice), "run", "--source", "nowhere", "--data-dir", str(tmp_path)],
                          env={**os.environ, "DAGSTER_HOME": str(tmp_path / "home")},
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert "unknown source 'nowhere'" in proc.stderr
