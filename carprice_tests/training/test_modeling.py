"""Features and the LightGBM model: tiny frames for the features, a simulated market for training."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from carprice.training import modeling
from carprice.training.features import CATEGORICAL, FEATURES, TIME_FEATURE, build_features
from carprice.training.linear import RidgeLogPrice
from carprice.training.splitting import split_holdout
from carprice_tests.conftest import clean_frame_from_market


@pytest.fixture(scope="module")
def features() -> pd.DataFrame:
    return build_features(clean_frame_from_market())


@pytest.fixture(scope="module")
def trained(features):
    train, holdout, _ = split_holdout(features, 0.2)
    return modeling.train_model(train), train, holdout


def test_features_of_one_listing():
    clean = pd.DataFrame([dict(
        listing_key="s:/u", url="u", first_seen_at="2025-01-02T10:00:00+00:00", listed_at_stated=True,
        title="VW Golf GTI - for parts", description="Full service history, Navi, Leather.",
        make="Volkswagen", model="Golf", model_year=2020, first_registration="2020-01-01", mileage_km=50000.0,
        fuel="petrol", transmission="manual", body="hatchback", power_kw=180.0, color="red", doors=3,
        condition=None, market_price=4000.0, seller_type="private", region="Vienna", listed_at="2025-01-01")])
    row = build_features(clean).iloc[0]
    assert row["age_years"] == pytest.approx(5.0, abs=0.01)
    assert row["km_per_year"] == pytest.approx(10000, rel=0.01)
    assert (row["for_parts"], row["service_history"], row["top_trim"], row["salvage"]) == (1, 1, 1, 0)
    assert row["equipment_words"] == 2
    assert row["make"] == "volkswagen" and pd.isna(row["condition"])
    assert row["log_price"] == pytest.approx(np.log(4000))
    # What splits it: its identity, its car (reposts share it), and when it was first seen (UTC, no zone).
    assert row["listing_key"] == "s:/u" and row["car_key"].startswith("Volkswagen|Golf|2020|50000")
    assert row["first_seen_at"] == pd.Timestamp("2025-01-02 10:00") and row["listed_at_stated"]


def test_the_time_feature_is_the_stated_listing_date_else_the_first_crawl():
    clean = pd.DataFrame([dict(listing_key=f"s:/{i}", url=str(i), first_seen_at="2026-03-01T10:00:00+00:00",
                               listed_at_stated=stated, title="", description=None, make="Kia", model="Ceed",
                               model_year=2020, first_registration=None, mileage_km=None, fuel=None, transmission=None,
                               body=None, power_kw=None, color=None, doors=None, condition=None, market_price=9000.0,
                               seller_type=None, region=None, listed_at=listed)
                          for i, (stated, listed) in enumerate([(True, "2026-01-01"), (False, "2026-07-02")])])
    # Unstated, listed_at is the latest crawl's day: a car unsold since March would look new.
    assert build_features(clean)[TIME_FEATURE].round(3).tolist() == [2026.0, round(2026 + 59 / 365.25, 3)]


def test_age_falls_back_to_model_year_without_registration():
    clean = pd.DataFrame([dict(listing_key="s:/u", url="u", first_seen_at="2024-07-01T10:00:00", listed_at_stated=True,
                               title="", description=None, make="Kia", model="Ceed", model_year=2020,
                               first_registration=None, mileage_km=None, fuel=None, transmission=None, body=None,
                               power_kw=None, color=None, doors=None, condition=None, market_price=9000.0,
                               seller_type=None, region=None, listed_at="2024-07-01")])
    row = build_features(clean).iloc[0]
    assert row["age_years"] == pytest.approx(4.0, abs=0.01)
    assert pd.isna(row["km_per_year"])
    assert row["car_key"] == "s:/u", "too little to tell the car: it is its own group"


def test_model_learns_the_market(trained):
    model, _train, holdout = trained
    metrics = modeling.evaluate(model, holdout)
    assert metrics["r2"] > 0.75, metrics
    assert metrics["median_ape"] < 0.2, metrics
    assert metrics["n"] == len(holdout)


def test_too_little_data_is_a_clear_error(features):
    with pytest.raises(ValueError, match="at least 300"):
        modeling.train_model(features.head(10))


def test_saved_model_predicts_the_same_after_loading(trained, tmp_path):
    model, _, holdout = trained
    saved = modeling.save_model(model, tmp_path, pd.Timestamp("2026-01-02T03:04:05").to_pydatetime())
    assert (saved.path / "model.txt").read_text().startswith("tree")
    loaded = modeling.load_model(saved.path, expected_sha256=saved.sha256)
    np.testing.assert_allclose(loaded.predict_price(holdout), model.predict_price(holdout), rtol=1e-9)
    assert loaded.features == FEATURES


def test_altered_or_missing_artifact_is_refused(trained, tmp_path):
    model, _, _ = trained
    saved = modeling.save_model(model, tmp_path, pd.Timestamp("2026-01-02").to_pydatetime())
    again = modeling.save_model(model, tmp_path, pd.Timestamp("2026-01-02 00:00:00.002").to_pydatetime())
    assert again.version != saved.version and again.sha256 == saved.sha256
    with pytest.raises(modeling.ModelArtifactError, match="checksum"):
        modeling.load_model(saved.path, expected_sha256="0" * 64)
    text = (saved.path / "model.txt").read_text()
    (saved.path / "model.txt").write_text(text.replace("tree", "treX", 1))
    with pytest.raises(modeling.ModelArtifactError, match="checksum"):
        modeling.load_model(saved.path)
    (saved.path / "model.json").unlink()
    with pytest.raises(modeling.ModelArtifactError, match="cannot read"):
        modeling.load_model(saved.path)


def test_unseen_categories_and_missing_columns(trained):
    model, _, holdout = trained
    odd = holdout.head(3).assign(make="trabant", model="601")
    assert np.isfinite(model.predict_price(odd)).all()
    with pytest.raises(KeyError, match="feature columns missing"):
        model.predict_price(holdout.drop(columns=["mileage_km"]))


def test_the_numeric_matrix_predicts_what_lightgbm_makes_of_the_dataframe(trained):
    """Predictions go to LightGBM as a float matrix of category positions (``values``), not as the categorical
    DataFrame it was trained on: both must give the same trees' output, unseen and missing levels included."""
    model, _, holdout = trained
    odd = holdout.head(200).copy()
    odd.loc[odd.index[:10], "make"] = "trabant"           # unseen level
    odd.loc[odd.index[10:20], "fuel"] = pd.NA             # missing level
    odd.loc[odd.index[20:30], "mileage_km"] = np.nan      # missing number
    by_frame = model.booster.predict(model.matrix(odd))
    np.testing.assert_array_equal(model.booster.predict(model.values(odd)), by_frame)
    columns = {c: odd[c].tolist() for c in odd.columns}   # a dict of lists, as a request gives
    np.testing.assert_allclose(model.predict_log(columns), model.predict_log(odd), rtol=0, atol=1e-12)


def test_the_linear_terms_add_up_to_the_sparse_design_prediction(trained):
    model, _, holdout = trained
    base, rows = model.base, holdout.head(300).assign(body=lambda d: d["body"].where(d.index % 7 != 0, "spaceship"))
    np.testing.assert_allclose(base.predict_log(rows), base._design(rows) @ base.coef, rtol=0, atol=1e-10)
    intercept, terms = base.terms(rows)
    np.testing.assert_allclose(intercept + terms.sum(axis=1), base._design(rows) @ base.coef, rtol=0, atol=1e-10)


def test_regression_metrics_on_known_numbers():
    m = modeling.regression_metrics(np.array([100.0, 200.0, 300.0]), np.array([110.0, 180.0, 300.0]))
    assert m["mae"] == pytest.approx(10.0)
    assert m["median_ape"] == pytest.approx(0.1)
    assert m["r2"] == pytest.approx(1 - 500 / 20000)


def test_recency_weights_halve_per_half_life_and_weight_the_linear_base():
    listed_year = pd.Series([2026.0, 2026.0 - 30 / 365.25, 2026.0 - 60 / 365.25, np.nan])
    # A row without a time counts like the median row.
    np.testing.assert_allclose(modeling.recency_weights(listed_year, 30), [1.0, 0.5, 0.25, 0.5])
    assert modeling.recency_weights(listed_year, None) is None
    # Two prices for the same car: weighted, the base leans to the heavier one.
    rows = pd.DataFrame({"age_years": [3.0] * 4, "mileage_km": [5e4] * 4, "power_kw": [80.0] * 4,
                         "model_year": [2023.0] * 4, "log_price": np.log([10_000, 10_000, 20_000, 20_000]),
                         **{c: ["x"] * 4 for c in CATEGORICAL}})
    plain = RidgeLogPrice(alpha=1e-6).fit(rows).predict(rows.head(1))[0]
    leaning = RidgeLogPrice(alpha=1e-6).fit(rows, np.array([1.0, 1.0, 0.01, 0.01])).predict(rows.head(1))[0]
    assert plain == pytest.approx(np.sqrt(2e8), rel=1e-3) and leaning == pytest.approx(10_000, rel=0.02)
    assert RidgeLogPrice.constant(rows, np.array([1.0, 1.0, 0.0, 0.0])).predict(rows.head(1))[0] == \
        pytest.approx(10_000)


def test_small_data_trains_on_one_thread_and_large_data_as_asked():
    recipe = {**modeling.DEFAULT_PARAMS, "time_feature": True, "num_boost_round": 80}
    small = modeling.training_params(recipe, 3_600)
    assert small["num_threads"] == 1 and "time_feature" not in small and "num_boost_round" not in small
    assert modeling.training_params(recipe, 1_000_000)["num_threads"] == recipe["num_threads"] == 2
    assert recipe["num_threads"] == 2, "the recipe itself is left as it was"
