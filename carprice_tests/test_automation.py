"""The landing sensor and the crawl schedule, evaluated with real contexts on a real landing zone."""

from __future__ import annotations

import json
from datetime import datetime

import dagster as dg

from carprice.defs.automation import daily_crawl, landing_sensor
from carprice.defs.partitions import batch_partitions
from carprice.defs.resources import LandingZoneResource
from carprice_tests.conftest import copy_batch


def evaluate(landing, instance, cursor=None) -> dg.SensorResult:
    context = dg.build_sensor_context(instance=instance, cursor=cursor,
                                      resources={"landing_zone": LandingZoneResource(path=str(landing))})
    return landing_sensor(context)


def test_no_batch_means_no_run(tmp_path):
    result = evaluate(tmp_path / "landing", dg.DagsterInstance.ephemeral())
    assert not result.run_requests and "no new batch" in str(result.skip_reason)
    assert json.loads(result.cursor) == []


def test_a_new_batch_becomes_one_run_for_its_partition(tmp_path, crawled_batch):
    batch = copy_batch(crawled_batch, tmp_path / "landing")
    result = evaluate(tmp_path / "landing", dg.DagsterInstance.ephemeral())
    assert [(r.partition_key, r.run_key) for r in result.run_requests] == [(batch.batch_id, batch.batch_id)]
    assert result.dynamic_partitions_requests[0].partition_keys == [batch.batch_id]
    assert result.dynamic_partitions_requests[0].partitions_def_name == batch_partitions.name
    assert json.loads(result.cursor) == [batch.batch_id]


def test_restart_with_the_cursor_neither_repeats_nor_misses(tmp_path, crawled_batch):
    landing = tmp_path / "landing"
    first = copy_batch(crawled_batch, landing)
    instance = dg.DagsterInstance.ephemeral()
    cursor = evaluate(landing, instance).cursor
    again = evaluate(landing, instance, cursor)
    assert not again.run_requests
    manifest = dict(first.manifest, batch_id=first.batch_id + "-2", started_at="2099-01-01T00:00:00+00:00")
    second = landing / first.source / manifest["batch_id"]
    second.mkdir()
    (second / "manifest.json").write_text(json.dumps(manifest))
    result = evaluate(landing, instance, again.cursor)
    assert [r.partition_key for r in result.run_requests] == [manifest["batch_id"]]


def test_an_unreadable_batch_folder_is_skipped_not_fatal(tmp_path, crawled_batch):
    landing = tmp_path / "landing"
    good = copy_batch(crawled_batch, landing)
    bad = landing / good.source / "automarkt-broken"
    bad.mkdir()
    (bad / "manifest.json").write_text("{truncated")
    result = evaluate(landing, dg.DagsterInstance.ephemeral())
    assert [r.partition_key for r in result.run_requests] == [good.batch_id]
    assert str(bad) in json.loads(result.cursor), "remembered, so it is reported once"


def test_a_batch_already_ingested_by_hand_is_not_run_again(tmp_path, crawled_batch):
    landing = tmp_path / "landing"
    batch = copy_batch(crawled_batch, landing)
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(batch_partitions.name, [batch.batch_id])
    instance.report_runless_asset_event(dg.AssetMaterialization("raw_listings", partition=batch.batch_id))
    result = evaluate(landing, instance)
    assert not result.run_requests and json.loads(result.cursor) == [batch.batch_id]


def test_daily_crawl_asks_for_every_source():
    context = dg.build_schedule_context(scheduled_execution_time=datetime(2026, 11, 26, 6, 0))
    requests = list(daily_crawl(context))
    assert [(r.partition_key, r.run_key) for r in requests] == [("automarkt", "automarkt-20261126")]
