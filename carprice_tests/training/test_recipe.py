"""Recipe selection: candidates tried on the same rows and fold, the best by validation MAE kept, within budget."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from carprice.training import modeling
from carprice.training.evaluation import BareLightGBM
from carprice.training.features import build_features
from carprice.training.linear import RidgeLogPrice
from carprice.training.recipe import CANDIDATES, select_recipe
from carprice_tests.conftest import clean_frame_from_market

# Each trial is a LightGBM fit: the integration tier keeps the fast one under a minute.
pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def train() -> pd.DataFrame:
    return build_features(clean_frame_from_market(1500, seed=6, day=40))


def test_every_candidate_is_tried_and_the_best_validation_mae_is_kept(train):
    choice = select_recipe(train, {"num_threads": 1})
    assert len(choice.trials) == len(CANDIDATES) and choice.trials[0]["params"] == "default"
    best = min(choice.trials, key=lambda t: t["validation_mae_eur"])
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
    assert model.params["linear_base"] is False and model.validation["mae_eur"] > 0
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
    assert predicted.shape == (len(rest),) and np.median(np.abs(predicted / rest["price_eur"] - 1)) < 0.5
