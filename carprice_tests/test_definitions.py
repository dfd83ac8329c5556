"""Dagster assets materialized against a DuckDB file in a temporary folder."""

from __future__ import annotations

import json

import dagster as dg
import pytest

from carprice.defs.cleaning import clean_listings
from carprice.defs.ingestion import raw_listings
from carprice.defs.partitions import batch_partitions
from carprice.defs.publishing import warehouse_snapshot
from carprice.defs.resources import build_resources
from carprice.defs.training import challenger_model, champion_model, listing_features
from carprice.defs.valuation import deals, listing_valuations
from carprice.definitions import build_definitions
from carprice.warehouse import Warehouse
from carprice_tests.conftest import copy_batch

DOWNSTREAM = [clean_listings, listing_features, challenger_model, champion_model, listing_valuations, deals,
              warehouse_snapshot]


def test_definitions_load_with_every_asset_described(settings):
    defs = build_definitions(settings)
    dg.Definitions.validate_loadable(defs)
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert keys == {"scraped_batch", "raw_listings", "clean_listings", "listing_features", "challenger_model",
                    "champion_model", "listing_valuations", "deals", "warehouse_snapshot"}
    for key in graph.get_all_asset_keys():
        assert graph.get(key).description, f"{key} has no description"
    assert {job.name for job in defs.resolve_all_job_defs()} >= {"crawl_job", "batch_job", "refresh_job", "valuation_job",
                                                                   "readmit_job"}


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

    result = dg.materialize(DOWNSTREAM, resources=build_resources(settings), instance=instance)
    assert result.success
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
    assert {"age=0-3y", "price=<5k"} <= set(slices) and all("mae_eur" in m for m in slices.values())
    model_meta = result.asset_materializations_for_node("challenger_model")[0].metadata
    assert model_meta["version"].value == registry.iloc[0]["version"]
    decision = result.asset_materializations_for_node("champion_model")[0].metadata
    assert decision["promoted"].value is True and "first model" in decision["reason"].value
    assert decision["champion_mae_eur"].value < decision["baseline_linear_ridge_mae_eur"].value
    assert 0.5 < decision["champion_r2"].value <= 1.0
    valued = wh.query("SELECT DISTINCT model_version FROM listing_valuations")
    assert valued["model_version"].tolist() == registry["version"].tolist()
    deals = wh.query("SELECT * FROM deals")
    assert (deals["asking_price_eur"] < deals["lower_price_eur"]).all()
    assert deals["saving_eur"].is_monotonic_decreasing and deals["url"].str.startswith("http").all()

    assert decision["registry_entry"].value["train_batches"] == [crawled_batch.batch_id]

    # The same data again: an identical challenger does not beat the champion by the margin.
    again = dg.materialize(DOWNSTREAM, resources=build_resources(settings), instance=instance)
    registry = wh.query("SELECT status, status_reason FROM model_registry ORDER BY trained_at")
    assert again.success and registry["status"].tolist() == ["champion", "rejected"]
    assert "does not improve on the champion" in registry.iloc[1]["status_reason"]
    # Every model's data version is exactly the admitted batches in the warehouse.
    orphans = wh.query("""SELECT version, unnest(train_batches) AS batch_id FROM model_registry
                          EXCEPT SELECT version, batch_id FROM model_registry, batch_status
                          WHERE batch_status.status IN ('accepted', 'readmitted')""")
    assert orphans.empty


def test_ingesting_a_batch_that_is_not_there_fails_clearly(settings):
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(batch_partitions.name, ["automarkt-missing"])
    with pytest.raises(dg.Failure, match="no batch 'automarkt-missing'"):
        dg.materialize([raw_listings], resources=build_resources(settings), instance=instance,
                       partition_key="automarkt-missing")


def test_valuations_without_a_model_fail_clearly(settings, crawled_batch):
    instance = dg.DagsterInstance.ephemeral()
    _ingest(settings, crawled_batch, instance)
    dg.materialize([clean_listings, listing_features], resources=build_resources(settings), instance=instance)
    with pytest.raises(dg.Failure, match="no champion model"):
        dg.materialize([listing_valuations], resources=build_resources(settings), instance=instance)
