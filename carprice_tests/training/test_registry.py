"""Model registry and promotion: better challengers promoted, worse or broken ones rejected, rollback."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from carprice.config import PromotionConfig
from carprice.monitoring.retraining import record_requests
from carprice.training import modeling
from carprice.training.evaluation import MedianBaseline, decide_promotion, score
from carprice.training.features import build_features
from carprice.training.promotion import judge_challenger
from carprice.training.registry import (
    RegistryError,
    champion,
    get_model,
    promote,
    register_challenger,
    rollback,
)
from carprice.training.serving_check import check_servable
from carprice.training.splitting import split_holdout
from carprice.warehouse import Warehouse
from carprice_tests.conftest import clean_frame_from_market

# Every promotion loads the challenger in a child process (the servability check): the integration tier.
pytestmark = pytest.mark.integration

CFG = PromotionConfig(backtest_folds=0)
_clock = iter(range(10_000))


@pytest.fixture(scope="module")
def features() -> pd.DataFrame:
    return build_features(clean_frame_from_market(3000, seed=5, day=40))


def history(wh: Warehouse, version: str) -> pd.DataFrame:
    """Every status change of ``version``, oldest first, as an analyst reads it from model_events."""
    return wh.query("SELECT * FROM model_events WHERE version = ? ORDER BY changed_at", [version])


def train_and_register(wh: Warehouse, tmp_path, features: pd.DataFrame, train_share: float = 1.0,
                       params: dict | None = None) -> str:
    """Train on (a share of) the rows before the holdout cutoff and register the model as a challenger."""
    train, holdout, split = split_holdout(features, 0.2)
    train = train.sample(frac=train_share, random_state=1) if train_share < 1 else train
    model = modeling.train_model(train, params)
    model.metrics = {"holdout": modeling.evaluate(model, holdout)}
    # After every listing was first seen, as a real training is.
    trained_at = datetime(2026, 6, 1, tzinfo=UTC) + timedelta(seconds=next(_clock))
    saved = modeling.save_model(model, tmp_path / "models", trained_at)
    register_challenger(wh, saved, trained_at=trained_at, train_batches=["b1"], code="test", params=model.params,
                        features=model.features, metrics=model.metrics, n_train=len(train),
                        n_holdout=len(holdout), train_cutoff=split.cutoff, split=split.to_dict())
    return saved.version


def test_first_model_is_promoted_when_it_beats_the_baselines(tmp_path, features):
    wh = Warehouse(tmp_path / "wh.duckdb")
    record_requests(wh, "b1", None, [("no_champion", "no model yet")])
    version = train_and_register(wh, tmp_path, features)
    result = judge_challenger(wh, features, CFG)
    assert result.promoted and result.reason.startswith("first model; beats the baselines")
    assert "{" not in result.reason and "linear_ridge " in result.reason  # read as text, not a Python dict
    # The request that asked for a model is answered by the judged one.
    assert result.requests_answered == 1
    assert wh.query("SELECT served_by FROM retraining_requests")["served_by"].tolist() == [version]
    assert champion(wh).version == version
    assert "servable" in result.scores["decision"]["servability"]
    assert set(result.scores["baselines"]) == {"median_make_model_year", "linear_ridge", "bare_lightgbm"}
    overall = result.scores["challenger"]["overall"]
    assert overall["interval_coverage"] > 0.75
    slices = set(result.scores["challenger"]["slices"])
    assert {"age=0-3y", "price=10-20k"} <= slices and any(s.startswith("make=") for s in slices)


def test_better_challenger_replaces_the_champion(tmp_path, features):
    wh = Warehouse(tmp_path / "wh.duckdb")
    weak = train_and_register(wh, tmp_path, features, train_share=0.25)
    promote(wh, weak, "seeded for the test")
    strong = train_and_register(wh, tmp_path, features)
    result = judge_challenger(wh, features, CFG)
    assert result.promoted, result.reason
    assert champion(wh).version == strong
    assert get_model(wh, weak).status == "archived"
    assert list(history(wh, weak)["status"]) == ["challenger", "champion", "archived"]


def test_worse_challenger_is_rejected_and_the_champion_keeps_serving(tmp_path, features):
    wh = Warehouse(tmp_path / "wh.duckdb")
    good = train_and_register(wh, tmp_path, features)
    promote(wh, good, "seeded for the test")
    worse = train_and_register(wh, tmp_path, features, train_share=0.2, params={"num_leaves": 2})
    result = judge_challenger(wh, features, CFG)
    assert not result.promoted and "does not improve on the champion" in result.reason
    assert champion(wh).version == good
    rejected = get_model(wh, worse)
    assert rejected.status == "rejected"
    stored = wh.query("SELECT promoted, reason, n_eval FROM model_evaluations").iloc[0]
    assert not stored["promoted"] and stored["reason"] == result.reason and stored["n_eval"] == result.n_eval


def test_corrupted_challenger_is_never_promoted(tmp_path, features):
    wh = Warehouse(tmp_path / "wh.duckdb")
    version = train_and_register(wh, tmp_path, features)
    artifact = get_model(wh, version).artifact_path / "model.txt"
    artifact.write_text(artifact.read_text().replace("leaf_value=", "leaf_value=1", 1))
    result = judge_challenger(wh, features, CFG)
    assert not result.promoted and "artifact unusable" in result.reason and "checksum" in result.reason
    with pytest.raises(LookupError):
        champion(wh)


def test_servability_check_runs_in_a_fresh_process(tmp_path, features):
    wh = Warehouse(tmp_path / "wh.duckdb")
    model = get_model(wh, train_and_register(wh, tmp_path, features))
    loaded = modeling.load_model(model.artifact_path)
    sample = features.head(20)
    ok, message = check_servable(model.artifact_path, model.sha256, sample, loaded.predict_price(sample))
    assert ok, message
    ok, message = check_servable(model.artifact_path, model.sha256, sample, loaded.predict_price(sample) * 1.1)
    assert not ok and "predictions differ" in message
    ok, message = check_servable(model.artifact_path, "0" * 64, sample, loaded.predict_price(sample))
    assert not ok and "checksum" in message


def test_rollback_restores_an_earlier_champion(tmp_path, features):
    wh = Warehouse(tmp_path / "wh.duckdb")
    first = train_and_register(wh, tmp_path, features)
    promote(wh, first, "first")
    second = train_and_register(wh, tmp_path, features, train_share=0.5)
    promote(wh, second, "second")
    rejected = train_and_register(wh, tmp_path, features)
    judge_challenger(wh, features, PromotionConfig(min_relative_improvement=0.99, backtest_folds=0))

    with pytest.raises(RegistryError, match="needs a reason"):
        rollback(wh, first, " ")
    with pytest.raises(RegistryError, match="no model version 'nope'"):
        rollback(wh, "nope", "why")
    with pytest.raises(RegistryError, match="is rejected; only a model that served before"):
        rollback(wh, rejected, "why")
    rollback(wh, first, "second model undervalues vans")
    assert champion(wh).version == first
    assert get_model(wh, second).status == "archived"
    last = history(wh, first).iloc[-1]
    assert last["status"] == "champion" and last["reason"] == "rollback: second model undervalues vans"


def test_promotion_rule_on_known_numbers():
    def scores(mae, slices=None):
        return {"overall": {"mae": mae, "n": 500}, "slices": slices or {}}

    base = {"linear_ridge": scores(2000.0), "median_make_model_year": scores(4000.0)}
    assert decide_promotion(scores(1800.0), None, base, CFG).promote
    assert not decide_promotion(scores(2100.0), None, base, CFG).promote
    assert decide_promotion(scores(990.0), scores(1000.0), base, CFG).promote
    assert not decide_promotion(scores(995.0), scores(1000.0), base, CFG).promote, "1% margin"
    slices_ch = {"make=bmw": {"mae": 3000.0, "n": 80}, "make=kia": {"mae": 900.0, "n": 20}}
    slices_cp = {"make=bmw": {"mae": 2000.0, "n": 80}, "make=kia": {"mae": 100.0, "n": 20}}
    decision = decide_promotion(scores(900.0, slices_ch), scores(1000.0, slices_cp), base, CFG)
    assert not decision.promote and list(decision.details["slice_regressions"]) == ["make=bmw"]


def test_median_baseline_falls_back_to_coarser_groups(features):
    baseline = MedianBaseline().fit(features)
    odd = features.head(3).assign(model="unknown", model_year=1900.0)
    predicted = baseline.predict(odd)
    assert np.isfinite(predicted).all()
    by_make = features.groupby("make")["market_price"].median()
    assert predicted[0] == by_make[odd.iloc[0]["make"]]
    assert score(features, baseline.predict(features))["overall"]["n"] == len(features)
