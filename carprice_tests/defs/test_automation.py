"""The landing sensor and the crawl schedule, evaluated with real contexts on a real landing zone."""

from __future__ import annotations

import json
import uuid
from datetime import datetime

import dagster as dg
import pytest

from carprice.config import EMBEDDED_SOURCE, RetrainingConfig, SourceConfig
from carprice.defs.automation import (
    MAX_BATCH_ATTEMPTS,
    batch_run_key,
    crawl_schedule,
    landing_sensor,
    retraining_sensor,
)
from carprice.defs.partitions import batch_partitions, source_partitions
from carprice.defs.resources import LandingZoneResource
from carprice.defs.scraping import market_day_of
from carprice.monitoring.retraining import (
    TRIGGER_KIND_TAG,
    TRIGGER_REASON_TAG,
    MonitoredBatch,
    TrainingRequest,
    training_due,
    training_wait,
)
from carprice_tests.conftest import copy_batch


def evaluate(landing, instance, cursor=None) -> dg.SensorResult:
    """The landing sensor on the landing zone ``landing`` (a data folder's ``landing/``)."""
    assert landing.name == "landing"
    context = dg.build_sensor_context(instance=instance, cursor=cursor,
                                      resources={"landing_zone": LandingZoneResource(data_dir=str(landing.parent))})
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


def test_a_source_schedule_crawls_its_partition_as_of_the_tick_and_adds_the_partition(tmp_path):
    schedule = crawl_schedule(EMBEDDED_SOURCE)
    assert (schedule.name, schedule.cron_schedule, schedule.execution_timezone) == ("crawl_automarkt", "0 6 * * *",
                                                                                   "UTC")
    with dg.DagsterInstance.local_temp(str(tmp_path)) as instance:
        with dg.build_schedule_context(instance=instance,
                                       scheduled_execution_time=datetime(2026, 11, 26, 6, 0)) as context:
            request = schedule(context)
        requests = request if isinstance(request, list) else [request]
        assert [(r.partition_key, r.run_key) for r in requests] == [("automarkt", "automarkt-20261126T0600")]
        assert requests[0].run_config == {"ops": {"scraped_batch": {"config": {"as_of": "2026-11-26"}}}}
        assert instance.get_dynamic_partitions(source_partitions.name) == ["automarkt"]
    with pytest.raises(ValueError, match="crawled on demand"):
        crawl_schedule(SourceConfig(name="manual", start_urls=("https://cars.example/",)))
    assert market_day_of("2026-11-26") == 329 and market_day_of("") is None
    with pytest.raises(dg.Failure, match="as_of must be an ISO date"):
        market_day_of("26/11/2026")


# --- the retraining sensor ---------------------------------------------------------------------

def monitored(instance, batch_id: str, **metadata) -> None:
    """Record that batch_monitoring materialized ``batch_id``, as a batch_job run would."""
    instance.add_dynamic_partitions(batch_partitions.name, [batch_id])
    instance.report_runless_asset_event(dg.AssetMaterialization(
        "batch_monitoring", partition=batch_id, metadata={"retrain_requested": False, **metadata}))


def retrain(instance, cursor=None):
    return retraining_sensor(dg.build_sensor_context(instance=instance, cursor=cursor))


def test_retraining_waits_for_a_monitored_batch():
    result = retrain(dg.DagsterInstance.ephemeral())
    assert not result.run_requests and "0 batches monitored since the last training" in str(
        result.skip_reason)


def test_a_monitoring_trigger_requests_training_with_its_reason():
    instance = dg.DagsterInstance.ephemeral()
    monitored(instance, "automarkt-1")
    monitored(instance, "automarkt-2", retrain_requested=True, trigger_kinds="decay",
              trigger_reasons=dg.MetadataValue.json(["champion MAPE on 120 fresh listings is 15.0%"]))
    (request,) = retrain(instance).run_requests
    assert request.run_key.startswith("train-after-automarkt-2-")
    assert request.tags[TRIGGER_KIND_TAG] == "decay"
    assert request.tags[TRIGGER_REASON_TAG] == "automarkt-2: champion MAPE on 120 fresh listings is 15.0%"


def test_the_cadence_requests_training_without_a_trigger_and_a_training_resets_it():
    instance = dg.DagsterInstance.ephemeral()
    every = RetrainingConfig().every_batches
    for i in range(every - 1):
        monitored(instance, f"automarkt-{i}")
    assert not retrain(instance).run_requests
    monitored(instance, f"automarkt-{every - 1}")
    (request,) = retrain(instance).run_requests
    assert request.tags[TRIGGER_KIND_TAG] == "cadence" and f"{every} new admitted batches" in request.tags[
        TRIGGER_REASON_TAG]
    instance.report_runless_asset_event(dg.AssetMaterialization("challenger_model"))
    assert not retrain(instance).run_requests, "batches monitored before the last training do not count again"
    monitored(instance, "automarkt-new")
    assert "1 batch monitored since the last training" in str(retrain(instance).skip_reason)


def test_training_due_is_a_pure_rule():
    cfg = RetrainingConfig(every_batches=7, min_batches_between=2)
    assert training_due([], cfg) is None
    first = MonitoredBatch("b1", True, ("no champion model yet",), ("no_champion",), record=5)
    assert training_due([first], cfg) == TrainingRequest("no_champion", "b1: no champion model yet",
                                                         "train-after-b1-5"), "no model: at once"
    decay = MonitoredBatch("b1", True, ("decay y",), ("decay",), record=5)
    assert training_due([decay], cfg) is None, "one batch after the last training: nothing new to learn from"
    two = [MonitoredBatch("b1", True, ("drift x",), ("drift",), 5), MonitoredBatch("b2", True, ("decay y",),
                                                                                 ("decay",), 6)]
    assert training_due(two, cfg) == TrainingRequest("decay+drift", "b2: drift x; decay y", "train-after-b2-6")
    again = [decay, MonitoredBatch("b1", False, record=9)]
    assert training_due(again, cfg) is None, "a batch monitored twice counts once, as its newest record says"
    with pytest.raises(ValueError, match="at least 1 batch"):
        training_due([first], RetrainingConfig(every_batches=0))


def test_a_trigger_that_must_wait_says_for_how_many_batches():
    cfg = RetrainingConfig(every_batches=7, min_batches_between=2)
    decay = MonitoredBatch("b1", True, ("decay y",), ("decay",), record=5)
    assert training_wait([decay], cfg) == (
        "decay asked for retraining; waiting for 1 batch more (1 batch monitored since the last training; a trigger "
        "trains after 2 batches, so that there is new data to learn from)")
    quiet = [MonitoredBatch(f"b{i}", False, record=i) for i in range(3)]
    assert training_wait(quiet, cfg) == ("not due: 3 batches monitored since the last training, no trigger; the "
                                         "cadence trains after 7 batches (4 more)")
    assert training_wait([], cfg).startswith("not due: 0 batches monitored")


def _run(instance: dg.DagsterInstance, batch_id: str, status: dg.DagsterRunStatus) -> None:
    instance.add_run(dg.DagsterRun(job_name="batch_job", run_id=str(uuid.uuid4()), status=status,
                                   tags={"dagster/partition": batch_id}))


def test_a_batch_whose_run_ended_without_ingesting_it_is_tried_again(tmp_path, crawled_batch):
    landing = tmp_path / "landing"
    batch = copy_batch(crawled_batch, landing)
    instance = dg.DagsterInstance.ephemeral()
    cursor = evaluate(landing, instance).cursor
    _run(instance, batch.batch_id, dg.DagsterRunStatus.STARTED)
    assert not evaluate(landing, instance, cursor).run_requests, "not while its run is under way"
    instance.report_run_failed(instance.get_runs()[0], message="killed")
    retry = evaluate(landing, instance, cursor)
    assert [(r.partition_key, r.run_key) for r in retry.run_requests] == [(batch.batch_id, f"{batch.batch_id}@2")]
    assert [r.run_key for r in evaluate(landing, instance, None).run_requests] == [f"{batch.batch_id}@2"], \
        "a new process (no cursor) retries it too"
    for _ in range(MAX_BATCH_ATTEMPTS - 1):
        _run(instance, batch.batch_id, dg.DagsterRunStatus.FAILURE)
    assert not evaluate(landing, instance, cursor).run_requests, "attempts used up: left for a person"


def test_the_next_attempt_is_a_pure_rule():
    def runs(*statuses):
        return [dg.DagsterRun(job_name="batch_job", run_id=str(uuid.uuid4()), status=s) for s in statuses]

    failed, started = dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.STARTED
    assert batch_run_key("b", runs(), requested=False) == "b"
    assert batch_run_key("b", runs(), requested=True) is None
    assert batch_run_key("b", runs(failed), requested=True) == "b@2"
    assert batch_run_key("b", runs(failed, started), requested=True) is None
    assert batch_run_key("b", runs(*[failed] * MAX_BATCH_ATTEMPTS), requested=True) is None
