"""monitor_admitted_batch: the guard and the paths that have nothing to compare with, on a real DuckDB file."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pytest

from carprice.config import MonitoringConfig
from carprice.monitoring.batch import SKIPPED, MonitoringError, monitor_admitted_batch
from carprice.monitoring.drift import REFERENCE_FILE
from carprice.monitoring.retraining import NO_CHAMPION, NO_REFERENCE
from carprice.training.challenger import train_challenger
from carprice.training.features import build_features
from carprice.training.registry import promote
from carprice.validation.store import ACCEPTED, QUARANTINED, record_verdict
from carprice.warehouse import Warehouse
from carprice_tests.conftest import clean_frame_from_market


def set_status(wh: Warehouse, batch_id: str, status: str) -> None:
    with wh.transaction() as con:
        record_verdict(con, batch_id, status=status, reason="test", decided_by="test", checks=[], profile={},
                       reference_id=None, at=datetime.now(UTC))


def test_only_admitted_batches_are_monitored(tmp_path):
    wh = Warehouse(tmp_path / "wh.duckdb")
    with pytest.raises(MonitoringError, match="b0 is not validated"):
        monitor_admitted_batch(wh, "b0", MonitoringConfig(), tmp_path / "reports")
    set_status(wh, "b1", QUARANTINED)
    with pytest.raises(MonitoringError, match="b1 is quarantined"):
        monitor_admitted_batch(wh, "b1", MonitoringConfig(), tmp_path / "reports")
    assert wh.count("monitoring_reports") == 0 and wh.count("retraining_requests") == 0


def test_without_a_champion_the_batch_asks_for_the_first_model(tmp_path):
    wh = Warehouse(tmp_path / "wh.duckdb")
    set_status(wh, "b1", ACCEPTED)
    outcome = monitor_admitted_batch(wh, "b1", MonitoringConfig(), tmp_path / "reports")
    assert outcome.status == SKIPPED and outcome.note == "no champion yet" and outcome.summary is None
    assert [kind for kind, _ in outcome.triggers] == [NO_CHAMPION] and outcome.alerts == []
    requests = wh.query("SELECT kind, batch_id, model_version FROM retraining_requests")
    assert requests.to_dict("records") == [{"kind": NO_CHAMPION, "batch_id": "b1", "model_version": None}]


def test_a_champion_without_its_reference_asks_to_be_replaced(tmp_path):
    wh = Warehouse(tmp_path / "wh.duckdb")
    set_status(wh, "b1", ACCEPTED)
    features = build_features(clean_frame_from_market(1200, seed=2, day=40))
    features["listed_at"] = pd.to_datetime(features["listed_at"])
    trained = train_challenger(wh, features, tmp_path / "models", holdout_fraction=0.2, params={},
                               reference_rows=100, trained_because="test", select=False)
    promote(wh, trained.saved.version, "test")
    (trained.saved.path / REFERENCE_FILE).unlink()
    outcome = monitor_admitted_batch(wh, "b1", MonitoringConfig(), tmp_path / "reports")
    assert outcome.status == SKIPPED and outcome.model_version == trained.saved.version
    assert [kind for kind, _ in outcome.triggers] == [NO_REFERENCE]
    assert "has no drift reference" in outcome.triggers[0][1]
