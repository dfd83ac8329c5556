"""train_challenger: the whole challenger step as a plain function, on a real DuckDB file in tmp."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import duckdb
import pandas as pd
import pytest

from carprice.monitoring.drift import REFERENCE_FILE
from carprice.monitoring.retraining import record_requests
from carprice.training.challenger import train_challenger
from carprice.training.features import build_features
from carprice.training.registry import HELD_OUT_FILE, held_out_keys, latest_challenger
from carprice.training.store import models
from carprice.validation.store import ACCEPTED, QUARANTINED, record_verdict
from carprice.warehouse import Warehouse
from carprice_tests.conftest import clean_frame_from_market

# Trains and registers models in a DuckDB warehouse: the integration tier (the fast one stays under a minute).
pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def features() -> pd.DataFrame:
    frame = build_features(clean_frame_from_market(1500, seed=3, day=40))
    frame["listed_at"] = pd.to_datetime(frame["listed_at"])
    return frame


def admit(wh: Warehouse, batch_id: str, status: str = ACCEPTED) -> None:
    with wh.transaction() as con:
        record_verdict(con, batch_id, status=status, reason="test", decided_by="test", checks=[], profile={},
                       reference_id=None, at=datetime.now(UTC))


def test_registers_a_challenger_with_its_data_version_and_reference(tmp_path, features):
    wh = Warehouse(tmp_path / "wh.duckdb")
    admit(wh, "b1")
    admit(wh, "b2")
    admit(wh, "b3", QUARANTINED)
    record_requests(wh, "b2", None, [("no_champion", "no model yet")])
    trained = train_challenger(wh, features, tmp_path / "models", holdout_fraction=0.2, params={"num_leaves": 7},
                               reference_rows=300, trained_because="because a test asked")
    entry = latest_challenger(wh)
    assert entry.version == trained.saved.version and entry.train_batches == ["b1", "b2"]
    assert entry.trained_because == "because a test asked" and entry.params["num_leaves"] == 7
    assert trained.n_train + trained.n_holdout == len(features)
    # Dated listings: the newest fifth (whole days) is held out, and the registry says so.
    assert trained.split.kind == entry.split.kind == "listing_date" and entry.split.why == ""
    assert entry.train_cutoff == trained.split.cutoff == entry.split.cutoff
    assert trained.n_holdout == (features["listed_at"] >= trained.split.cutoff).sum()
    assert 0.15 < trained.n_holdout / len(features) < 0.25
    recorded = json.loads(models(wh).iloc[0]["split"])
    assert recorded["kind"] == "listing_date" and recorded["early_stopping"]["kind"] == "listing_date"
    assert not (trained.saved.path / HELD_OUT_FILE).exists(), "a time split needs no list of held-out listings"
    assert len(pd.read_parquet(trained.saved.path / REFERENCE_FILE)) == 300
    # Requests are answered by a judged model (promotion), not by one merely trained.
    assert wh.query("SELECT served_by FROM retraining_requests")["served_by"].isna().all()
    assert trained.superseded == []
    assert len(trained.top_features()) == 10


def without_dates(features: pd.DataFrame, first_seen: str = "2026-11-27 10:00") -> pd.DataFrame:
    """As one import of a file without a date column lands them: dated the import day, not stated, seen once."""
    return features.assign(listed_at=pd.Timestamp(first_seen).normalize(), listed_at_stated=False,
                           first_seen_at=pd.Timestamp(first_seen))


def test_one_date_for_everything_trains_on_first_seen_times(tmp_path, features):
    # The crash this replaces: "cannot split 4328 rows by time at 2026-11-27 00:00:00: one side is empty".
    wh = Warehouse(tmp_path / "wh.duckdb")
    admit(wh, "b1")
    same_day = features.assign(listed_at=pd.Timestamp("2026-11-27"))
    trained = train_challenger(wh, same_day, tmp_path / "models", holdout_fraction=0.2, params={}, reference_rows=300,
                               trained_because="test", select=False)
    entry = latest_challenger(wh)
    assert trained.split.kind == entry.split.kind == "first_seen"
    assert entry.split.why.startswith(f"listing dates could not split the data (all {len(features)} are the same")
    assert entry.train_cutoff == trained.split.cutoff and trained.n_holdout > 0


def test_a_single_import_without_dates_trains_on_a_random_split_by_car(tmp_path, features):
    wh = Warehouse(tmp_path / "wh.duckdb")
    admit(wh, "b1")
    trained = train_challenger(wh, without_dates(features), tmp_path / "models", holdout_fraction=0.2, params={},
                               reference_rows=300, trained_because="test", select=False)
    entry = latest_challenger(wh)
    assert entry.split.kind == "grouped_random" and entry.split.group_column == "car_key"
    assert entry.train_cutoff is None and trained.split.cutoff is None
    assert "no listing has one" in entry.split.why and "nor could first-seen times" in entry.split.why
    # The judgement knows the held-out listings by their keys.
    keys = held_out_keys(entry)
    assert len(keys) == trained.n_holdout == round(0.2 * len(features))
    assert keys.isdisjoint(pd.read_parquet(trained.saved.path / REFERENCE_FILE)["listing_key"]), \
        "the drift reference is a sample of the training rows"
    listed = models(wh).iloc[0]
    assert listed["train_cutoff"] is pd.NaT or pd.isna(listed["train_cutoff"])
    assert json.loads(listed["split"])["kind"] == "grouped_random"


def test_a_challenger_never_judged_is_superseded_by_the_next_one(tmp_path, features):
    # The training run that made the first challenger was killed before its judgement.
    wh = Warehouse(tmp_path / "wh.duckdb")
    admit(wh, "b1")
    record_requests(wh, "b1", None, [("no_champion", "no model yet")])
    first = train_challenger(wh, features, tmp_path / "models", holdout_fraction=0.2, params={"num_leaves": 7},
                             reference_rows=300, trained_because="first", select=False)
    second = train_challenger(wh, features, tmp_path / "models", holdout_fraction=0.2, params={"num_leaves": 7},
                              reference_rows=300, trained_because="second", select=False)
    assert second.superseded == [first.saved.version]
    statuses = dict(wh.query("SELECT version, status FROM model_registry").itertuples(index=False))
    assert statuses == {first.saved.version: "rejected", second.saved.version: "challenger"}
    reason = wh.query("SELECT status_reason FROM model_registry WHERE version = ?", [first.saved.version]).iloc[0, 0]
    assert "never judged" in reason and second.saved.version in reason
    assert latest_challenger(wh).version == second.saved.version
    assert wh.query("SELECT served_by FROM retraining_requests")["served_by"].isna().all()


def test_a_warehouse_from_before_splits_were_recorded_is_upgraded(tmp_path):
    path = tmp_path / "wh.duckdb"
    with duckdb.connect(str(path)) as con:
        # The tables as they were: a cutoff on every model and every judgement, no split.
        con.execute("""CREATE TABLE model_registry (
            version VARCHAR PRIMARY KEY, trained_at TIMESTAMPTZ NOT NULL, status VARCHAR NOT NULL,
            status_reason VARCHAR, artifact_path VARCHAR NOT NULL, sha256 VARCHAR NOT NULL,
            train_batches VARCHAR[] NOT NULL, code_version VARCHAR NOT NULL, params JSON, features JSON,
            metrics JSON, n_train BIGINT, n_holdout BIGINT, train_cutoff TIMESTAMP NOT NULL,
            trained_because VARCHAR)""")
        con.execute("""CREATE TABLE model_evaluations (
            challenger VARCHAR NOT NULL, champion VARCHAR, evaluated_at TIMESTAMPTZ NOT NULL,
            eval_from TIMESTAMP NOT NULL, n_eval BIGINT NOT NULL, scores JSON NOT NULL, backtest JSON,
            promoted BOOLEAN NOT NULL, reason VARCHAR NOT NULL)""")
        con.execute("INSERT INTO model_registry VALUES ('old', now(), 'challenger', 'x', '/m/old', 'abc', ['b1'], "
                    "'0.1', '{}', '[]', '{}', 900, 100, '2026-02-01', 'test')")
    wh = Warehouse(path)
    old = latest_challenger(wh)
    assert (old.split.kind, old.split.cutoff, old.split.n_holdout) == ("listing_date", pd.Timestamp("2026-02-01"), 100)
    assert old.split.summary() == "100 listings listed on or after 2026-02-01 held out"
    with wh.transaction() as con:
        con.execute("UPDATE model_registry SET train_cutoff = NULL, split = '{\"kind\": \"grouped_random\"}'")
        con.execute("INSERT INTO model_evaluations (challenger, evaluated_at, n_eval, scores, promoted, reason) "
                    "VALUES ('old', now(), 0, '{}', false, 'test')")
    assert wh.query("SELECT eval_from FROM model_evaluations")["eval_from"].isna().all()


def test_training_reads_each_car_once_while_every_url_keeps_its_features(tmp_path):
    from carprice.training.store import read_features
    from carprice.valuation.store import current_features

    wh = Warehouse(tmp_path / "wh.duckdb")
    wh.replace_table("clean_listings", pd.DataFrame({
        "url": ["a", "b", "c"], "is_current": [True, True, True], "repost_of": [None, "a", None]}))
    wh.replace_table("listing_features", pd.DataFrame({
        "url": ["a", "b", "c"], "listed_at": pd.to_datetime(["2026-01-02", "2026-01-01", "2026-01-03"])}))
    assert read_features(wh)["url"].tolist() == ["a", "c"], "the repost b is the same car as a: one training row"
    assert sorted(current_features(wh)["url"]) == ["a", "b", "c"], "every current URL is valued"
