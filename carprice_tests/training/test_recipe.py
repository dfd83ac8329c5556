"""Recipe selection: candidates tried on the same rows and fold, the best by validation MAE kept, within budget."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from carprice.training import modeling
from carprice.training.evaluation import BareLightGBM
from carprice.training.features import TIME_FEATURE, build_features
from carprice.training.linear import RidgeLogPrice
from carprice.training.recipe import CANDIDATES, select_recipe, uses_time
from carprice_tests.conftest import clean_frame_from_market

# Each trial is a LightGBM fit: the integration tier keeps the fast one under a minute.
pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def train() -> pd.DataFrame:
    return build_features(clean_frame_from_market(1500, seed=6, day=40))


def test_every_candidate_is_tried_and_the_best_validation_mae_is_kept(train):
    choice = select_recipe(train, {"num_threads": 1})
    assert len(choice.trials) == len(CANDIDATES) and choice.trials[0]["params"] == "default"
    best = min(choice.trials, key=lambda t: t["validation_mae"])
    assert {**{"num_threads": 1}, **(best["params"] if best["params"] != "default" else {})} == choice.params
    assert choice.model is not None and choice.searched_rows == len(train), "searched on everything: model kept"
    summary = choice.summary()
    assert summary["chosen"] == choice.params and len(summary["trials"]) == len(CANDIDATES)


def test_the_budget_and_the_sample_bound_the_search(train):
    quick = select_recipe(train, budget_s=0)
    assert [t["params"] for t in quick.trials] == ["default"], "the default is always tried, then the budget stops"
    sampled = select_recipe(train, search_rows=600, budget_s=0)
    assert sampled.searched_rows == 600 and sampled.model is None, "a sample's model is refit on all the rows"


def test_a_recipe_without_the_linear_base_trains_saves_and_loads(train, tmp_path):
    model = modeling.train_model(train, {"linear_base": False})
    assert model.params["linear_base"] is False and model.validation["mae"] > 0
    saved = modeling.save_model(model, tmp_path, datetime(2026, 1, 1, tzinfo=UTC))
    loaded = modeling.load_model(saved.path, expected_sha256=saved.sha256)
    np.testing.assert_allclose(loaded.predict_log(train.head(50)), model.predict_log(train.head(50)))
    constant = RidgeLogPrice.constant(train)
    assert np.allclose(constant.predict_log(train.head(5)), train["log_price"].mean())
    assert np.allclose(RidgeLogPrice.from_dict(constant.to_dict()).predict_log(train.head(5)),
                       constant.predict_log(train.head(5)))


def test_the_bare_lightgbm_baseline_prices_in_euros(train):
    fit, rest = train.iloc[:1200], train.iloc[1200:]
    predicted = BareLightGBM().fit(fit).predict(rest)
    assert predicted.shape == (len(rest),) and np.median(np.abs(predicted / rest["market_price"] - 1)) < 0.5


def undated(features: pd.DataFrame) -> pd.DataFrame:
    """The same listings as a site with no listing dates, crawled once, would give them."""
    return features.assign(listed_at_stated=False, first_seen_at=pd.Timestamp("2026-01-01 10:00"))


def test_without_a_time_order_small_data_chooses_rounds_on_folds_of_whole_cars_and_refits(train):
    model = modeling.train_model(undated(train))
    split = model.early_stopping_split
    assert (split["kind"], split["folds"], split["refit"]) == ("grouped_random", modeling.CV_FOLDS, True)
    # Every training row was a validation row once: the interval is calibrated on all of them.
    assert model.validation["n"] == len(train)
    masks, _ = modeling.validation_folds(undated(train))
    assert sum(int(m.sum()) for m in masks) == len(train) and not (masks[0] & masks[1]).any()
    cars = undated(train).groupby("car_key").size().index
    fold_of_car = {car: i for i, m in enumerate(masks) for car in train.loc[m, "car_key"].unique()}
    assert len(fold_of_car) == len(cars), "each car's listings are in one fold"


def test_a_time_ordered_fold_stops_the_trees_and_small_data_is_refit_on_every_row(train):
    refit = modeling.train_model(train, {"num_threads": 1})
    trial = modeling.train_model(train, {"num_threads": 1}, refit=False)
    assert refit.early_stopping_split["folds"] == 1 and refit.early_stopping_split["kind"] == "listing_date"
    assert refit.early_stopping_split["refit"] and not trial.early_stopping_split["refit"]
    # Same recipe and rounds, same out-of-fold scores; the refit trees have also seen the newest tenth.
    assert refit.params["num_boost_round"] == trial.params["num_boost_round"]
    assert refit.validation == trial.validation and refit.interval == trial.interval
    assert refit.booster.current_iteration() == refit.params["num_boost_round"]
    assert trial.booster.current_iteration() == trial.params["num_boost_round"], "exactly the chosen trees serve"
    assert not np.allclose(refit.predict_log(train.tail(50)), trial.predict_log(train.tail(50)))


def test_time_aware_recipes_learn_from_listing_dates_and_are_not_tried_without_a_time_order(train, tmp_path):
    timed = modeling.train_model(train, {"time_feature": True, "recency_half_life_days": 30, "num_threads": 1})
    assert timed.features[-1] == TIME_FEATURE and timed.booster.feature_name()[-1] == TIME_FEATURE
    saved = modeling.save_model(timed, tmp_path, datetime(2026, 1, 1, tzinfo=UTC))
    loaded = modeling.load_model(saved.path, expected_sha256=saved.sha256)
    np.testing.assert_allclose(loaded.predict_log(train.head(50)), timed.predict_log(train.head(50)))
    dateless = select_recipe(undated(train), {"num_threads": 1})
    tried = [t["params"] for t in dateless.trials]
    assert tried and not any(isinstance(p, dict) and uses_time(p) for p in tried)
    assert len(tried) == len([c for c in CANDIDATES if not uses_time(c)])
