"""The pure parts of the price API: the rating, its SQL twin, nearest names, effects that add up, and a described
car turned into the training's feature row."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pytest

from carprice.serving.rating import RATING_BOUNDS, RATINGS, position, rate, rating_sql
from carprice.serving.valuation import (
    CAR_FIELDS,
    Knowledge,
    nearest_names,
    no_rating_reasons,
    request_features,
    top_effects,
    unknown_names,
)
from carprice.training.features import FEATURES, build_features
from carprice_tests.serving.conftest import clean_listings


def test_position_is_minus_one_and_one_at_the_interval_ends():
    pos = position([8_000, 10_000, 12_500, 9_000], [8_000] * 4, [10_000] * 4, [12_500] * 4)
    assert pos[:3] == pytest.approx([-1.0, 0.0, 1.0])
    assert -1 < pos[3] < 0


@pytest.mark.parametrize(("asking", "expected"), [
    (7_000, "great"),        # below the interval: what the pipeline lists as a deal
    (8_000, "good"),         # on the lower end
    (9_500, "fair"),
    (10_000, "fair"),
    (11_500, "high"),
    (12_500, "overpriced"),  # on the upper end
    (20_000, "overpriced"),
])
def test_rating_of_an_asking_price(asking, expected):
    assert rate([asking], [8_000], [10_000], [12_500])[0] == expected


def test_the_sql_rating_agrees_with_the_python_one():
    rng = np.random.default_rng(3)
    predicted = rng.uniform(2_000, 50_000, 500)
    lower, upper = predicted * rng.uniform(0.6, 0.95, 500), predicted * rng.uniform(1.05, 1.6, 500)
    asking = predicted * np.exp(rng.normal(0, 0.3, 500))
    frame = pd.DataFrame({"a": asking, "l": lower, "p": predicted, "u": upper})
    con = duckdb.connect()
    con.register("frame", frame)
    sql = con.sql(f"SELECT {rating_sql('a', 'l', 'p', 'u')} AS r FROM frame").df()["r"]
    assert list(sql) == list(rate(asking, lower, predicted, upper))
    assert set(sql) == set(RATINGS) and len(RATING_BOUNDS) == len(RATINGS) - 1


def test_nearest_names_are_the_known_spellings_closest_first():
    makes = {"volkswagen": "Volkswagen", "volvo": "Volvo", "bmw": "BMW", "toyota": "Toyota"}
    assert nearest_names("Volksvagen", makes)[0] == "Volkswagen"
    assert nearest_names("BMV", makes) == ["BMW"]
    assert nearest_names("zzzz", makes) == []


KNOWLEDGE = Knowledge(names={"bmw": ("BMW", {"3 series": "3 Series", "x5": "X5"}), "audi": ("Audi", {"a4": "A4"})},
                      training_listings={("bmw", "3 series"): 40, ("bmw", "x5"): 3},
                      ranges={"mileage_km": (0.0, 400_000.0), "model_year": (2000.0, 2026.0)}, min_model_listings=10)


def test_unknown_makes_and_models_name_the_nearest_known_ones():
    cars = pd.DataFrame({"make": ["BMW", "bmv", "Bmw", "audi"], "model": ["3 Series", "x5", "X6", "A4"]})
    found = unknown_names(cars, KNOWLEDGE)
    assert [(u.index, u.field, u.nearest[:1]) for u in found] == [(1, "make", ["BMW"]), (2, "model", ["X5"])]
    assert "nearest known: BMW" in found[0].message()


def test_no_rating_for_cars_the_model_does_not_know():
    class Model:
        categories = {"model": ["3 series", "x5"]}

    features = pd.DataFrame({"make": ["bmw", "bmw", "audi", "bmw"], "model": ["3 series", "x5", "a4", "3 series"],
                             "mileage_km": [50_000.0, 50_000.0, 50_000.0, 900_000.0],
                             "model_year": [2020.0, 2020.0, 2020.0, 2020.0]})
    reasons = no_rating_reasons(features, Model(), KNOWLEDGE)
    assert reasons[0] is None
    assert "only 3 listings" in reasons[1]
    assert "never learned" in reasons[2]
    assert "mileage_km 900,000 is outside the 0–400,000" in reasons[3]


def test_listed_and_other_effects_add_up_to_the_prediction():
    rng = np.random.default_rng(1)
    effects = pd.DataFrame(rng.normal(0, 0.2, (4, 10)), columns=[f"f{i}" for i in range(10)])
    baseline = np.log(rng.uniform(5_000, 20_000, 4))
    explained = top_effects(baseline, effects, effects, top=3)
    for i, row in enumerate(explained):
        assert len(row["effects"]) == 3
        sizes = [abs(e["log_effect"]) for e in row["effects"]]
        assert sizes == sorted(sizes, reverse=True) and sizes[0] == pytest.approx(np.abs(effects.iloc[i]).max())
        total = sum(e["log_effect"] for e in row["effects"]) + row["other_log_effect"]
        assert np.log(row["baseline_price"]) + total == pytest.approx(baseline[i] + effects.iloc[i].sum(),
                                                                          abs=1e-4)
        assert row["effects"][0]["effect_pct"] == pytest.approx(np.expm1(row["effects"][0]["log_effect"]) * 100,
                                                                abs=0.01)


def test_a_described_car_gets_the_feature_row_its_listing_got():
    clean = clean_listings(40).head(20)
    clean.loc[clean.index[:5], "first_registration"] = None  # registered mid-way through the model year
    listed = build_features(clean)
    for i in range(len(clean)):
        listing = clean.iloc[i]
        # As the API passes a request on: a column per field, missing as None, the asking price beside.
        car = {c: [None if pd.isna(listing[c]) else listing[c]] for c in CAR_FIELDS if c in clean}
        car["asking_price"] = [float(listing["market_price"])]
        described = request_features(car, pd.Timestamp(listing["listed_at"]))
        for name in FEATURES:
            want, got = listed[name].iloc[i], described[name][0]
            assert (pd.isna(want) and pd.isna(got)) or want == pytest.approx(got), name
        assert described["market_price"][0] == listing["market_price"]


def test_fields_a_client_leaves_out_are_missing_features():
    described = request_features({"make": ["BMW "], "model": ["3 Series"], "model_year": [2019]},
                                 pd.Timestamp("2026-06-01", tz="UTC"))
    assert (described["make"][0], described["model"][0]) == ("bmw", "3 series")
    assert described["age_years"][0] == pytest.approx((pd.Timestamp("2026-06-01") - pd.Timestamp("2019-07-01")).days
                                                      / 365.25)
    assert np.isnan(described["mileage_km"][0]) and described["fuel"][0] is None
    assert np.isnan(described["market_price"][0]) and described["service_history"][0] == 0


def test_a_champion_split_at_random_learned_only_from_the_cars_it_kept_and_had_seen(tmp_path):
    from carprice.serving import store
    from carprice.training.registry import RegisteredModel, write_held_out_keys
    from carprice.training.splitting import GROUPED_RANDOM, Split
    from carprice.warehouse import Warehouse

    wh = Warehouse(tmp_path / "w.duckdb")
    seen = pd.to_datetime(["2026-01-01 10:00"] * 3 + ["2026-02-01 10:00"])
    wh.replace_table("listing_features", pd.DataFrame({
        "url": list("abcd"), "listing_key": [f"s:/{u}" for u in "abcd"], "make": "kia", "model": "ceed",
        "first_seen_at": seen, "model_year": [2015.0, 2016.0, 2024.0, 2025.0], "mileage_km": 1e4, "power_kw": 70.0}))
    wh.replace_table("clean_listings", pd.DataFrame({"url": list("abcd"),
                                                     "repost_of": pd.Series([None] * 4, dtype="string")}))
    (tmp_path / "m").mkdir()
    write_held_out_keys(tmp_path / "m", pd.Series(["s:/c"]))
    model = RegisteredModel(
        version="v", status="champion", artifact_path=tmp_path / "m", sha256="", metrics={}, params={},
        features=[], train_batches=[], train_cutoff=None, trained_at=pd.Timestamp("2026-01-15", tz="UTC"),
        split=Split(GROUPED_RANDOM, 0.2, 2, 1, group_column="car_key", seed=7))
    # c was held out and d arrived after training: the champion learned from a and b only.
    assert store.training_listings(wh, model)["listings"].tolist() == [2]
    assert store.training_ranges(wh, model)["model_year"] == (2015.0, 2016.0)


@pytest.mark.parametrize("year", [1500, 3000])
def test_a_model_year_no_timestamp_holds_gives_no_age_rather_than_a_wrapped_one(year):
    described = request_features({"make": ["Kia"], "model": ["Ceed"], "model_year": [year]},
                                 pd.Timestamp("2026-06-01", tz="UTC"))
    assert np.isnan(described["age_years"][0])
