"""train_challenger: the whole challenger step as a plain function, on a real DuckDB file in tmp."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pytest

from carprice.monitoring.drift import REFERENCE_FILE
from carprice.monitoring.retraining import record_requests
from carprice.training.challenger import train_challenger
from carprice.training.features import build_features
from carprice.training.registry import latest_challenger
from carprice.validation.store import ACCEPTED, QUARANTINED, record_verdict
from carprice.warehouse import Warehouse
from carprice_tests.conftest import clean_frame_from_market


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
    assert entry.train_cutoff == trained.cutoff == features["listed_at"].quantile(0.8)
    assert len(pd.read_parquet(trained.saved.path / REFERENCE_FILE)) == 300
    # Requests are answered by a judged model (promotion), not by one merely trained.
    assert wh.query("SELECT served_by FROM retraining_requests")["served_by"].isna().all()
    assert trained.superseded == []
    assert len(trained.top_features()) == 10


def test_data_that_cannot_be_split_by_time_registers_nothing(tmp_path, features):
    wh = Warehouse(tmp_path / "wh.duckdb")
    admit(wh, "b1")
    same_day = features.assign(listed_at=pd.Timestamp("2026-11-27"))
    with pytest.raises(ValueError, match="cannot split"):
        train_challenger(wh, same_day, tmp_path / "models", holdout_fraction=0.2, params={}, reference_rows=300,
                         trained_because="test")
    assert wh.count("model_registry") == 0 and not (tmp_path / "models").exists()


def test_a_challenger_never_judged_is_superseded_by_the_next_one(tmp_path, features):
    # The training run that made the first challenger was killed before its judgement.
    wh = Warehouse(tmp_path / "wh.duckdb")
    admit(wh, "b1")
    record_requests(wh, "b1", None, [("no_champion", "no model yet")])
    first = train_challenger(wh, features, tmp_path / "models", holdout_fraction=0.2, params={"num_leaves": 7},
                             reference_rows=300, trained_because="first")
    second = train_challenger(wh, features, tmp_path / "models", holdout_fraction=0.2, params={"num_leaves": 7},
                              reference_rows=300, trained_because="second")
    assert second.superseded == [first.saved.version]
    statuses = dict(wh.query("SELECT version, status FROM model_registry").itertuples(index=False))
    assert statuses == {first.saved.version: "rejected", second.saved.version: "challenger"}
    reason = wh.query("SELECT status_reason FROM model_registry WHERE version = ?", [first.saved.version]).iloc[0, 0]
    assert "never judged" in reason and second.saved.version in reason
    assert latest_challenger(wh).version == second.saved.version
    assert wh.query("SELECT served_by FROM retraining_requests")["served_by"].isna().all()
