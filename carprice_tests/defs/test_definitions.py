"""Dagster assets materialized against a DuckDB file in a temporary folder."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from carprice.config import PROJECT_DIR
from carprice.definitions import build_definitions
from carprice.defs.cleaning import clean_listings
from carprice.defs.ingest import raw_listings
from carprice.defs.monitoring import batch_monitoring, summary_numbers
from carprice.defs.partitions import batch_partitions
from carprice.defs.publishing import model_overview, warehouse_snapshot
from carprice.defs.resources import build_resources
from carprice.defs.training import challenger_model, champion_model, listing_features
from carprice.defs.valuation import deals, listing_valuations
from carprice.warehouse import Warehouse
from carprice_tests.conftest import copy_batch

# Real crawls, Dagster runs or processes: the integration tier.
pytestmark = [pytest.mark.integration, pytest.mark.slow]

DOWNSTREAM = [clean_listings, listing_features, challenger_model, champion_model, model_overview,
              listing_valuations, deals, warehouse_snapshot]


def test_definitions_load_with_every_asset_described(settings):
    defs = build_definitions(settings)
    dg.Definitions.validate_loadable(defs)
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert keys == {"scraped_batch", "raw_listings", "admitted_batch", "clean_listings", "listing_features",
                    "challenger_model", "champion_model", "model_overview", "listing_valuations", "deals",
                    "batch_monitoring", "warehouse_snapshot"}
    for key in graph.get_all_asset_keys():
        assert graph.get(key).description, f"{key} has no description"
    jobs = {job.name for job in defs.resolve_all_job_defs()}
    assert jobs >= {"crawl_job", "batch_job", "training_job", "refresh_job", "valuation_job", "readmit_job"}
    sensors = [defs.resolve_sensor_def(name) for name in ("landing_sensor", "retraining_sensor")]
    assert all(s.default_status == dg.DefaultSensorStatus.RUNNING for s in sensors)
    assert defs.resolve_schedule_def("crawl_automarkt").default_status == dg.DefaultScheduleStatus.RUNNING


def _ingest(settings, batch, instance):
    copy = copy_batch(batch, settings.landing_dir)
    instance.add_dynamic_partitions(batch_partitions.name, [copy.batch_id])
    return dg.materialize([raw_listings], resources=build_resources(settings), instance=instance,
                          partition_key=copy.batch_id)


def test_graph_materializes_from_a_landed_batch(settings, crawled_batch):
    instance = dg.DagsterInstance.ephemeral()
    ingest = _ingest(settings, crawled_batch, instance)
    assert ingest.success
    meta = ingest.asset_materializations_for_node("raw_listings")[0].metadata
    assert meta["dagster/row_count"].value == crawled_batch.manifest["counts"]["listings"]
    raw_columns = [c.name for c in meta["dagster/column_schema"].value.columns]
    # Raw rows hold prices as the pages stated them; the market price is worked out where they are read.
    assert raw_columns[:2] == ["batch_id", "ingested_at"] and {"price", "currency"} <= set(raw_columns)

    result = dg.materialize(DOWNSTREAM, resources=build_resources(settings), instance=instance)
    assert result.success
    clean_meta = result.asset_materializations_for_node("clean_listings")[0].metadata
    clean_schema = {c.name: c.type for c in clean_meta["dagster/column_schema"].value.columns}
    assert clean_schema["market_price"] == "DOUBLE" and clean_schema["listed_at"].startswith("TIMESTAMP")
    assert clean_meta["dagster/row_count"].value == Warehouse(settings.warehouse_path).count("clean_listings") > 0
    wh = Warehouse(settings.warehouse_path)
    counts = wh.query("""SELECT (SELECT count(*) FROM clean_listings) AS clean,
                                (SELECT count(*) FROM excluded_listings) AS excluded,
                                (SELECT count(*) FROM listing_features) AS features,
                                (SELECT count(*) FROM listing_valuations) AS valued,
                                (SELECT count(*) FROM raw_listings) AS raw""").iloc[0]
    assert counts["clean"] + counts["excluded"] == counts["raw"]
    assert counts["features"] == counts["clean"] == counts["valued"]

    registry = wh.query("SELECT * FROM model_registry")
    assert registry["status"].tolist() == ["champion"]
    assert list(registry.iloc[0]["train_batches"]) == [crawled_batch.batch_id]
    slices = json.loads(registry.iloc[0]["metrics"])["evaluation_slices"]
    assert {"age=0-3y", "price=<5k"} <= set(slices) and all("mae" in m for m in slices.values())
    model_meta = result.asset_materializations_for_node("challenger_model")[0].metadata
    assert model_meta["version"].value == registry.iloc[0]["version"]
    # The simulated market states listing dates: the newest listings are held out, and the registry says how.
    assert model_meta["split"].value == json.loads(registry.iloc[0]["split"])["kind"] == "listing_date"
    decision = result.asset_materializations_for_node("champion_model")[0].metadata
    assert decision["promoted"].value is True and "first model" in decision["reason"].value
    assert decision["champion_mae"].value < decision["baseline_linear_ridge_mae"].value
    assert 0.5 < decision["champion_r2"].value <= 1.0
    valued = wh.query("SELECT DISTINCT model_version FROM listing_valuations")
    assert valued["model_version"].tolist() == registry["version"].tolist()
    deals = wh.query("SELECT * FROM deals")
    assert (deals["asking_price"] < deals["lower_price"]).all()
    assert deals["saving"].is_monotonic_decreasing and deals["url"].str.startswith("http").all()

    overview = result.asset_materializations_for_node("model_overview")[0].metadata
    assert overview["champion"].value == registry.iloc[0]["version"]
    assert overview["train"].value.endswith("from 1 batches")

    # Monitoring the batch the champion was trained on: drift is measured, quality is not (no new listing).
    monitored = dg.materialize([batch_monitoring], resources=build_resources(settings), instance=instance,
                               partition_key=crawled_batch.batch_id)
    meta = {k: v.value for k, v in monitored.asset_materializations_for_node("batch_monitoring")[0].metadata.items()}
    assert meta["status"] == "monitored" and meta["n_fresh"] == 0 and "mape_pct" not in meta
    numbers = summary_numbers(meta)
    assert numbers["drifted_columns"] <= 1 and numbers["n_columns"] == 12 and meta["retrain_requested"] is False
    assert meta["report_url"] == f"{settings.reports_url}{crawled_batch.batch_id}/drift.html"
    report = wh.query("SELECT * FROM monitoring_reports").iloc[0]
    assert report["batch_id"] == crawled_batch.batch_id and report["model_version"] == registry.iloc[0]["version"]
    assert Path(report["report_path"]).stat().st_size > 100_000

    # A champion without its drift reference (saved before monitoring existed) asks to be replaced.
    (Path(registry.iloc[0]["artifact_path"]) / "reference.parquet").unlink()
    monitored = dg.materialize([batch_monitoring], resources=build_resources(settings), instance=instance,
                               partition_key=crawled_batch.batch_id)
    meta = monitored.asset_materializations_for_node("batch_monitoring")[0].metadata
    assert meta["trigger_kinds"].value == "no_reference" and meta["retrain_requested"].value is True
    assert "has no drift reference" in wh.query("SELECT reason FROM retraining_requests").iloc[0, 0]

    # The same data again: an identical challenger does not beat the champion by the margin.
    again = dg.materialize(DOWNSTREAM, resources=build_resources(settings), instance=instance)
    registry = wh.query("SELECT status, status_reason FROM model_registry ORDER BY trained_at")
    assert again.success and registry["status"].tolist() == ["champion", "rejected"]
    assert "does not improve on the champion" in registry.iloc[1]["status_reason"]
    # The current-model view: the champion still serves, the rejected challenger is listed with its reason.
    overview = again.asset_materializations_for_node("model_overview")[0].metadata
    assert overview["rejected_challengers"].value == 1 and "| rejected |" in overview["challengers"].value
    assert "does not improve on the champion" in overview["challengers"].value
    assert overview["page"].value == f"{settings.reports_url}model.html"
    page = (settings.reports_dir / "model.html").read_text()
    assert "Champion " + registry_versions(wh)[0] in page and "rejected" in page and "interval covers" in page
    index = (settings.reports_dir / "index.html").read_text()
    assert crawled_batch.batch_id in index and f'href="{crawled_batch.batch_id}/drift.html"' in index
    # Every model's data version is exactly the admitted batches in the warehouse.
    orphans = wh.query("""SELECT version, unnest(train_batches) AS batch_id FROM model_registry
                          EXCEPT SELECT version, batch_id FROM model_registry, batch_status
                          WHERE batch_status.status IN ('accepted', 'readmitted')""")
    assert orphans.empty


def registry_versions(wh: Warehouse) -> list[str]:
    return wh.query("SELECT version FROM model_registry ORDER BY trained_at")["version"].tolist()


def test_ingesting_a_batch_that_is_not_there_fails_clearly(settings):
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(batch_partitions.name, ["automarkt-missing"])
    with pytest.raises(dg.Failure, match="no batch 'automarkt-missing'"):
        dg.materialize([raw_listings], resources=build_resources(settings), instance=instance,
                       partition_key="automarkt-missing")


def test_before_any_model_valuations_are_empty_and_monitoring_asks_for_one(settings, crawled_batch):
    instance = dg.DagsterInstance.ephemeral()
    batch = _ingest(settings, crawled_batch, instance)
    batch_id = batch.asset_materializations_for_node("raw_listings")[0].partition
    result = dg.materialize([clean_listings, listing_features, listing_valuations], resources=build_resources(settings),
                            instance=instance)
    assert result.success
    assert result.asset_materializations_for_node("listing_valuations")[0].metadata["model_version"].value == "none yet"
    wh = Warehouse(settings.warehouse_path)
    assert wh.query("SELECT count(*) AS n FROM listing_valuations").iloc[0]["n"] == 0
    monitored = dg.materialize([batch_monitoring], resources=build_resources(settings), instance=instance,
                               partition_key=batch_id)
    meta = monitored.asset_materializations_for_node("batch_monitoring")[0].metadata
    assert meta["retrain_requested"].value is True and meta["trigger_kinds"].value == "no_champion"
    requests = wh.query("SELECT kind, batch_id, served_by FROM retraining_requests")
    assert requests.values.tolist() == [["no_champion", batch_id, None]]


def test_a_corrupted_champion_fails_valuations_clearly(settings, crawled_batch):
    instance = dg.DagsterInstance.ephemeral()
    _ingest(settings, crawled_batch, instance)
    assert dg.materialize(DOWNSTREAM, resources=build_resources(settings), instance=instance).success
    wh = Warehouse(settings.warehouse_path)
    artifact = wh.query("SELECT artifact_path FROM model_registry WHERE status = 'champion'").iloc[0, 0]
    model_txt = Path(artifact) / "model.txt"
    model_txt.write_text(model_txt.read_text().replace("tree", "TREE", 1))
    with pytest.raises(dg.Failure, match="does not match its checksum"):
        dg.materialize([listing_valuations], resources=build_resources(settings), instance=instance)


def test_dg_checks_and_lists_the_definitions_loaded_from_the_defs_folder(tmp_path):
    """`dg check defs` and `dg list defs`, as a Dagster user runs them from the project folder."""
    dg_cli = str(Path(sys.executable).with_name("dg"))
    env = {"PATH": str(Path(sys.executable).parent), "HOME": str(tmp_path), "DAGSTER_HOME": str(tmp_path),
           "CARPRICE_DATA_DIR": str(tmp_path / "data")}
    (tmp_path / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    check = subprocess.run([dg_cli, "check", "defs"], cwd=PROJECT_DIR, env=env, capture_output=True, text=True,
                           timeout=300)
    assert check.returncode == 0 and "All definitions loaded successfully" in check.stdout, check.stderr
    listed = subprocess.run([dg_cli, "list", "defs", "--json"], cwd=PROJECT_DIR, env=env, capture_output=True,
                            text=True, timeout=300)
    assert listed.returncode == 0, listed.stderr
    found = json.loads(listed.stdout)
    assert {a["asset_key"] for a in found["assets"]} == {
        "scraped_batch", "raw_listings", "admitted_batch", "clean_listings", "listing_features", "challenger_model",
        "champion_model", "model_overview", "listing_valuations", "deals", "batch_monitoring", "warehouse_snapshot"}
    assert {s["name"] for s in found["sensors"]} == {"landing_sensor", "retraining_sensor"}
    snapshot = next(a for a in found["assets"] if a["asset_key"] == "warehouse_snapshot")
    assert snapshot["owners"] == [{"team": "carprice"}] and snapshot["source"].startswith("carprice/defs/publishing.py")
