"""Data validation end to end: a faulty site's batch is crawled, checked, quarantined, and re-admitted.

Each fault is injected into the real simulated marketplace, crawled by the real spider over HTTP and
processed by the real batch_job on a DuckDB warehouse that already has an accepted batch and a champion.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import dagster as dg
import pytest

from carprice.config import Settings
from carprice.definitions import build_definitions
from carprice.defs.partitions import batch_partitions
from carprice.training.registry import champion
from carprice.validation.admission import AdmissionError, readmit
from carprice.validation.checks import (
    ALL_CHECKS,
    CHECK_COLUMNS,
    CHECK_DISTRIBUTIONS,
    CHECK_SOURCE_FIELDS,
    CHECK_UNITS,
    CHECK_VALUES,
)
from carprice.validation.store import batch_statuses
from carprice.warehouse import Warehouse
from carprice_tests.conftest import SMALL_MARKET, copy_batch, crawl_market

# Real crawls, Dagster runs or processes: the integration tier.
pytestmark = [pytest.mark.integration, pytest.mark.slow]


def run_batch(settings: Settings, batch_id: str, instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    if not instance.has_dynamic_partition(batch_partitions.name, batch_id):
        instance.add_dynamic_partitions(batch_partitions.name, [batch_id])
    return build_definitions(settings).resolve_job_def("batch_job").execute_in_process(
        instance=instance, partition_key=batch_id, raise_on_error=False)


def train(settings: Settings, instance: dg.DagsterInstance, run_config: dict | None = None) -> None:
    result = build_definitions(settings).resolve_job_def("training_job").execute_in_process(
        instance=instance, run_config=run_config)
    assert result.success


# A promotion rule that lets any working challenger through, for tests that need a new champion.
ALWAYS_PROMOTE = {"ops": {"champion_model": {"config": {"min_relative_improvement": -1.0,
                                                        "max_slice_regression": 1000.0}}}}


# Every crawl the module's tests ask for: (days after the baseline's, faults). They are started together when the
# first test asks for one (a few at a time: each is a spider and a marketplace process), and each test gets a copy
# of the batch in its own landing zone: a crawl of one market on one day lands the same listings whoever asks.
CRAWLS_AT_ONCE = 3


@pytest.fixture(scope="module")
def crawls(tmp_path_factory) -> Iterator[dict[tuple[int, frozenset[str]], Future]]:
    root = tmp_path_factory.mktemp("crawls")
    wanted = [(1, frozenset())] + [(1, frozenset({f})) for f in sorted(FAULT_EXPECTATIONS)] \
        + [(2, frozenset({"new_field"}))]
    with ThreadPoolExecutor(max_workers=CRAWLS_AT_ONCE) as pool:
        futures = {key: pool.submit(crawl_market, root / f"{key[0]}-{'-'.join(sorted(key[1])) or 'clean'}",
                                    seed=SMALL_MARKET["market_seed"], day=SMALL_MARKET["market_day"] + key[0],
                                    listings=SMALL_MARKET["market_listings"], faults=key[1]) for key in wanted}
        yield futures
        for future in futures.values():
            future.cancel()


def crawl_day(settings: Settings, crawls: dict, days_after: int, faults: frozenset[str] = frozenset()) -> str:
    """The batch of the market ``days_after`` the baseline's day with ``faults``, landed in ``settings``' zone."""
    return copy_batch(crawls[(days_after, faults)].result().batch, settings.landing_dir).batch_id


@pytest.fixture(scope="module")
def baseline(tmp_path_factory, crawled_batch) -> Settings:
    """A warehouse with one accepted batch (the reference) and a champion model."""
    root = tmp_path_factory.mktemp("baseline")
    settings = Settings(data_dir=root / "data", dagster_home=root / "home", **SMALL_MARKET, crawl_timeout_s=300)
    batch = copy_batch(crawled_batch, settings.landing_dir)
    instance = dg.DagsterInstance.ephemeral()
    assert run_batch(settings, batch.batch_id, instance).success
    train(settings, instance)
    return settings


@pytest.fixture
def platform(baseline, tmp_path) -> Settings:
    """A private copy of the baseline warehouse and landing zone (the model files are shared, read-only)."""
    settings = dataclasses.replace(baseline, data_dir=tmp_path / "data")
    shutil.copytree(baseline.data_dir, settings.data_dir)
    return settings


def state(settings: Settings) -> dict:
    wh = Warehouse(settings.warehouse_path)
    return {
        "champion": champion(wh).version,
        "models": int(wh.query("SELECT count(*) AS n FROM model_registry").iloc[0]["n"]),
        "valuations": wh.query("SELECT * FROM listing_valuations").sort_values("url").reset_index(drop=True),
    }


def failed_checks(result: dg.ExecuteInProcessResult) -> dict[str, str]:
    out = {}
    for evaluation in result.get_asset_check_evaluations():
        if not evaluation.passed:
            out[evaluation.check_name] = evaluation.metadata["failures"].value
    return out


def test_a_clean_next_day_passes_every_check(platform, crawls):
    before = state(platform)
    batch_id = crawl_day(platform, crawls, 1)
    result = run_batch(platform, batch_id, dg.DagsterInstance.ephemeral())
    assert result.success, failed_checks(result)
    assert all(e.passed for e in result.get_asset_check_evaluations())
    assert len(result.get_asset_check_evaluations()) == len(ALL_CHECKS)
    after = state(platform)
    assert after["models"] == before["models"], "training waits for the cadence or a monitoring trigger"
    assert after["champion"] == before["champion"]
    monitored = result.asset_materializations_for_node("batch_monitoring")[0].metadata
    assert monitored["status"].value == "monitored" and monitored["n_fresh"].value > 0
    wh = Warehouse(platform.warehouse_path)
    assert wh.query("SELECT batch_id FROM monitoring_reports")["batch_id"].tolist() == [batch_id]
    assert wh.query("SELECT count(*) AS n FROM alerts").iloc[0]["n"] == 0


def assert_quarantine_shown(result: dg.ExecuteInProcessResult, instance: dg.DagsterInstance, batch_id: str,
                            failed: dict[str, str]) -> None:
    """The UI shows a quarantine as one: on the raw_listings partition, on each failed check, and on the partitions
    it left unmade, each with the batch id and why."""
    raw = result.asset_materializations_for_node("raw_listings")[0].metadata
    status = raw["status"].value
    assert status.startswith("quarantined: ") and "\n" not in status and len(status) <= 220, status
    assert all(name in status for name in failed), (status, failed)
    assert raw["batch_id"].value == batch_id and raw["market_day"].value != "unknown"
    for evaluation in result.get_asset_check_evaluations():
        if not evaluation.passed:
            assert evaluation.description.startswith(f"{batch_id} quarantined: "), evaluation.description
            assert evaluation.metadata["evidence"].value.startswith("| measure | value |")
    for asset in ("admitted_batch", "batch_monitoring"):
        (observation,) = [r.asset_observation for r in instance.fetch_observations(dg.AssetKey(asset), limit=5).records]
        assert observation.partition == batch_id and observation.metadata["status"].value == status
    run = instance.get_run_by_id(result.run_id)
    assert run.status == dg.DagsterRunStatus.SUCCESS, "no partition of the run is marked failed"


FAULT_EXPECTATIONS = {
    "rename_field": {CHECK_SOURCE_FIELDS: "possibly renamed", CHECK_VALUES: "null rates: mileage_km"},
    "remove_field": {CHECK_SOURCE_FIELDS: "missing fields ['vehicleModelDate']", CHECK_VALUES: "model_year"},
    "new_field": {CHECK_SOURCE_FIELDS: "new fields ['emissionsCO2', 'vehicleIdentificationNumber']"},
    "km_labelled_miles": {CHECK_UNITS: "mileage in another unit", CHECK_DISTRIBUTIONS: "mileage_km drifted"},
    "prices_x100": {CHECK_VALUES: "out of plausible range: market_price", CHECK_UNITS: "prices on another scale"},
    "new_currency": {CHECK_UNITS: "currencies not seen before"},
    "broken_pages": {CHECK_VALUES: "reject rate"},
    "duplicate_flood": {CHECK_VALUES: "duplicate rate"},
}


REFRESHED_FAULT = "prices_x100"


@pytest.mark.parametrize("fault", sorted(FAULT_EXPECTATIONS))
def test_faulty_batch_is_quarantined_and_nothing_downstream_moves(platform, crawls, fault):
    before = state(platform)
    batch_id = crawl_day(platform, crawls, 1, frozenset({fault}))
    instance = dg.DagsterInstance.ephemeral()
    result = run_batch(platform, batch_id, instance)

    assert result.success, "a quarantine is an outcome of the run, not its failure"
    failed = failed_checks(result)
    for check_name, text in FAULT_EXPECTATIONS[fault].items():
        assert text in failed.get(check_name, ""), (fault, failed)
    assert CHECK_COLUMNS not in failed, "the spider's own columns never change"
    materialized = {e.asset_key.to_user_string() for e in result.all_events
                    if e.event_type_value == "ASSET_MATERIALIZATION"}
    assert materialized == {"raw_listings"}, "the admitted_batch gate stopped everything downstream"
    assert_quarantine_shown(result, instance, batch_id, failed)

    wh = Warehouse(platform.warehouse_path)
    status = batch_statuses(wh).set_index("batch_id").loc[batch_id]
    assert status["status"] == "quarantined"
    for check_name in FAULT_EXPECTATIONS[fault]:
        assert check_name in status["reason"]
    raw = wh.query("SELECT count(*) AS n FROM raw_listings WHERE batch_id = ?", [batch_id]).iloc[0]["n"]
    assert raw > 0, "the quarantined rows stay for inspection"
    alerts = wh.query("SELECT kind, subject, message FROM alerts ORDER BY kind, message")
    assert set(alerts["subject"]) == {batch_id}
    assert sorted(m.split(" failed")[0] for m in alerts[alerts["kind"] == "check_failed"]["message"]) == sorted(failed)
    (quarantined,) = alerts[alerts["kind"] == "batch_quarantined"]["message"]
    assert f"carprice batches readmit {batch_id}" in quarantined
    logged = [e.user_message for e in instance.all_logs(result.run_id) if "ALERT [batch_quarantined]" in e.user_message]
    assert logged, "the alert is a line in the run log too"
    after = state(platform)
    assert after["champion"] == before["champion"] and after["models"] == before["models"]
    assert after["valuations"].equals(before["valuations"])

    if fault == REFRESHED_FAULT:
        # Even an explicit refresh cannot train on the quarantined rows. Cleaning reads admitted batches only,
        # whatever stopped a batch, so one fault proves it (a refresh trains and judges: the slow part).
        refresh = build_definitions(platform).resolve_job_def("refresh_job").execute_in_process(
            instance=dg.DagsterInstance.ephemeral())
        assert refresh.success
        trained_on = wh.query("SELECT train_batches FROM model_registry ORDER BY trained_at DESC LIMIT 1").iloc[0, 0]
        assert batch_id not in list(trained_on)
        assert wh.query("SELECT count(*) AS n FROM clean_listings WHERE batch_id = ?", [batch_id]).iloc[0]["n"] == 0


def test_readmitted_batch_flows_through(platform, crawls):
    instance = dg.DagsterInstance.ephemeral()
    batch_id = crawl_day(platform, crawls, 1, frozenset({"new_field"}))
    held = run_batch(platform, batch_id, instance)
    assert held.success and not held.asset_materializations_for_node("admitted_batch")
    wh = Warehouse(platform.warehouse_path)
    before = state(platform)

    with pytest.raises(AdmissionError, match="reviewer"):
        readmit(wh, batch_id, " ", "fine")
    with pytest.raises(AdmissionError, match="note"):
        readmit(wh, batch_id, "ana", "")
    with pytest.raises(AdmissionError, match="no validated batch"):
        readmit(wh, "automarkt-nope", "ana", "fine")
    readmit(wh, batch_id, "ana", "the site added a VIN and CO2; harmless")

    result = run_batch(platform, batch_id, instance)
    assert result.success
    train(platform, instance, ALWAYS_PROMOTE)
    waived = next(e for e in result.get_asset_check_evaluations() if e.check_name == CHECK_SOURCE_FIELDS)
    assert waived.passed and waived.metadata["readmitted_by"].value == "ana"
    status = batch_statuses(wh).set_index("batch_id").loc[batch_id]
    assert (status["status"], status["decided_by"]) == ("readmitted", "ana")
    after = state(platform)
    assert after["champion"] != before["champion"]
    trained_on = wh.query("SELECT train_batches FROM model_registry WHERE version = ?", [after["champion"]]).iloc[0, 0]
    assert batch_id in list(trained_on)
    with pytest.raises(AdmissionError, match="is readmitted, not quarantined"):
        readmit(wh, batch_id, "ana", "again")

    # The re-admitted batch joined the reference: the same site change passes the next day.
    next_id = crawl_day(platform, crawls, 2, frozenset({"new_field"}))
    assert run_batch(platform, next_id, instance).success


def _carprice(settings: Settings, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, **settings.to_env()}
    return subprocess.run([str(Path(sys.executable).with_name("carprice")), *args], env=env, capture_output=True,
                          text=True, timeout=600)


def test_cli_lists_quarantined_batches_and_readmits_one(platform, crawls):
    batch_id = crawl_day(platform, crawls, 1, frozenset({"new_field"}))
    run_batch(platform, batch_id, dg.DagsterInstance.ephemeral())

    listing = _carprice(platform, "batches", "list", "--status", "quarantined")
    assert listing.returncode == 0, listing.stderr
    assert batch_id in listing.stdout and "new fields" in listing.stdout

    refused = _carprice(platform, "batches", "readmit", "automarkt-unknown", "--by", "ana", "--note", "ok")
    assert refused.returncode == 2 and "no validated batch 'automarkt-unknown'" in refused.stderr

    done = _carprice(platform, "batches", "readmit", batch_id, "--by", "ana", "--note", "the VIN field is fine")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "batch readmitted" in done.stdout
    accepted = _carprice(platform, "batches", "list", "--status", "readmitted")
    assert batch_id in accepted.stdout and "the VIN field is fine" in accepted.stdout


def test_readmit_job_records_the_review(platform, crawls):
    batch_id = crawl_day(platform, crawls, 1, frozenset({"new_currency"}))
    instance = dg.DagsterInstance.ephemeral()
    run_batch(platform, batch_id, instance)
    job = build_definitions(platform).resolve_job_def("readmit_job")
    config = {"ops": {"record_readmission": {"config": {"batch_id": batch_id, "reviewer": "li",
                                                        "note": "PLN and CHF are expected now"}}}}
    assert job.execute_in_process(run_config=config, instance=instance).success
    bad = {"ops": {"record_readmission": {"config": {"batch_id": batch_id, "reviewer": "li", "note": "again"}}}}
    with pytest.raises(dg.Failure, match="not quarantined"):
        run_batch(platform, batch_id, instance)  # admits it
        job.execute_in_process(run_config=bad, instance=instance)
    status = batch_statuses(Warehouse(platform.warehouse_path)).set_index("batch_id").loc[batch_id]
    assert (status["status"], status["decided_by"]) == ("readmitted", "li")


def test_cli_rollback_makes_the_earlier_champion_serve_again(platform, crawls):
    first = state(platform)["champion"]
    instance = dg.DagsterInstance.ephemeral()
    assert run_batch(platform, crawl_day(platform, crawls, 1), instance).success
    train(platform, instance, ALWAYS_PROMOTE)
    second = state(platform)["champion"]
    assert second != first

    listing = _carprice(platform, "models", "list")
    assert listing.returncode == 0 and first in listing.stdout and second in listing.stdout
    refused = _carprice(platform, "models", "rollback", second, "--reason", "no")
    assert refused.returncode == 2 and "is champion; only a model that served before" in refused.stderr
    done = _carprice(platform, "models", "rollback", first, "--reason", "second model undervalues vans")
    assert done.returncode == 0, done.stderr[-2000:]
    after = state(platform)
    assert after["champion"] == first
    assert set(after["valuations"]["model_version"]) == {first}, "listings were re-valued with the rollback"
