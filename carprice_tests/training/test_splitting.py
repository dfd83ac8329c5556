"""Holdout splits on tiny frames: listing dates when they can split, first-seen times next, random by car last."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from carprice.training import modeling
from carprice.training.features import build_features
from carprice.training.splitting import (
    FIRST_SEEN,
    GROUPED_RANDOM,
    LISTING_DATE,
    Split,
    holdout_share,
    never_trained_on,
    split_holdout,
)
from carprice_tests.conftest import clean_frame_from_market

CRAWL = pd.Timestamp("2026-11-27 10:00")


def frame(n: int = 200, days: int = 10, crawls: int = 5) -> pd.DataFrame:
    """``n`` listings stated over ``days`` days and first seen over ``crawls`` daily crawls, one car each."""
    i = np.arange(n)
    return pd.DataFrame({
        "listing_key": [f"s:/cars/{k}" for k in i], "car_key": [f"car{k}" for k in i],
        "listed_at": pd.Timestamp("2026-11-01") + pd.to_timedelta(i * days // n, unit="D"),
        "listed_at_stated": True,
        # Within a crawl, pages are fetched seconds apart.
        "first_seen_at": CRAWL + pd.to_timedelta(i * crawls // n, unit="D") + pd.to_timedelta(i % 97, unit="s"),
    })


def without_dates(df: pd.DataFrame) -> pd.DataFrame:
    """As a site that states no date gives them: the crawl day, marked as not stated."""
    return df.assign(listed_at=df["first_seen_at"].dt.normalize(), listed_at_stated=False)


def one_crawl(df: pd.DataFrame) -> pd.DataFrame:
    """Everything first seen in one crawl (a first crawl, or a single import): seconds apart, one moment."""
    return df.assign(first_seen_at=CRAWL + pd.to_timedelta(np.arange(len(df)) % 600, unit="s"))


def test_listing_dates_hold_out_the_newest_days_whole():
    df = frame()
    train, holdout, split = split_holdout(df, 0.2)
    assert split.kind == LISTING_DATE and split.why == "" and split.time_column == "listed_at"
    assert train["listed_at"].max() < holdout["listed_at"].min() == split.cutoff
    assert len(holdout) == split.n_holdout == 40 and len(train) + len(holdout) == len(df)


def test_the_holdout_is_at_most_the_newest_days_but_never_fewer_than_the_rows_a_judgement_needs():
    df = frame(n=1000, days=20)  # 50 listings a day
    assert holdout_share(df, 0.2, None, 0) == 0.2, "no cap asked for"
    assert holdout_share(df, 0.2, 2, 0) == pytest.approx(0.1), "the newest two days"
    assert holdout_share(df, 0.2, 2, 150) == pytest.approx(0.15), "raised to 150 rows"
    assert holdout_share(df, 0.2, 10, 0) == 0.2, "never more than the share asked for"
    _, holdout, split = split_holdout(df, holdout_share(df, 0.2, 2, 0))
    assert len(holdout) == 100 and holdout["listed_at"].nunique() == 2 and split.kind == LISTING_DATE
    # Without a time axis nothing is newest: the share asked for, held out at random by car.
    assert holdout_share(one_crawl(without_dates(df)), 0.2, 2, 0) == 0.2
    # Without listing dates, the first-seen times: five crawls of 200, the newest two days are two crawls.
    assert holdout_share(without_dates(frame(n=1000)), 0.5, 2, 0) == pytest.approx(0.4)
    # A smaller share that the dates cannot split (the newest days hold too few): the share asked for, never a
    # random split where the dates could split.
    thin = frame(n=5000, days=20)
    thin.loc[4000:, "listed_at"] = pd.Timestamp("2026-11-21")  # a day of 980, then 10 on each of the newest two
    thin.loc[4980:, "listed_at"] = pd.Timestamp("2026-11-22") + pd.to_timedelta(np.arange(20) % 2, unit="D")
    assert holdout_share(thin, 0.2, 2, 0) == 0.2
    assert split_holdout(thin, holdout_share(thin, 0.2, 2, 0))[2].kind == LISTING_DATE


def test_no_listing_dates_fall_back_to_first_seen_times():
    train, holdout, split = split_holdout(without_dates(frame()), 0.2)
    assert split.kind == FIRST_SEEN and split.cutoff == CRAWL + pd.Timedelta(days=4)
    assert "listing dates could not split the data (no listing has one)" in split.why
    assert train["first_seen_at"].max() < holdout["first_seen_at"].min()
    # Listing dates that are missing altogether (NaT, no stated flag) are the same case.
    _, _, split = split_holdout(frame().drop(columns="listed_at_stated").assign(listed_at=pd.NaT), 0.2)
    assert split.kind == FIRST_SEEN and "no listing has one" in split.why


def test_one_listing_date_for_everything_falls_back_to_first_seen_times():
    _, _, split = split_holdout(frame().assign(listed_at=pd.Timestamp("2026-11-27")), 0.2)
    assert split.kind == FIRST_SEEN
    assert "all 200 are the same (2026-11-27 00:00)" in split.why


def test_dates_on_only_some_listings_fall_back_and_a_few_undated_ones_train():
    half = frame().assign(listed_at_stated=lambda d: d.index % 2 == 0)
    _, _, split = split_holdout(half, 0.2)
    assert split.kind == FIRST_SEEN and "only 100 of 200 listings have one" in split.why
    # A few undated listings do not stop a listing-date split: nothing says they are new, so they train.
    few = frame().assign(listed_at_stated=lambda d: d.index % 20 != 0)
    train, holdout, split = split_holdout(few, 0.2)
    assert split.kind == LISTING_DATE and holdout["listed_at_stated"].all()
    assert (~train["listed_at_stated"]).sum() == 10


def test_a_single_import_without_dates_is_split_at_random_by_car():
    df = one_crawl(without_dates(frame()))
    # Reposts: pairs of listings of one car.
    df["car_key"] = [f"car{k // 2}" for k in range(len(df))]
    train, holdout, split = split_holdout(df, 0.2)
    assert split.kind == GROUPED_RANDOM and split.group_column == "car_key" and split.seed == 7
    assert split.cutoff is None
    assert "listing dates could not split the data (no listing has one)" in split.why
    assert "nor could first-seen times (all 200 are the same (2026-11-27 10:00))" in split.why
    assert set(train["car_key"]).isdisjoint(holdout["car_key"]), "a car and its reposts stay on one side"
    assert len(holdout) == 40 and len(train) == 160


def test_a_random_split_is_decided_by_the_car_not_by_the_rest_of_the_data():
    df = one_crawl(without_dates(frame(400)))
    _, holdout, _ = split_holdout(df, 0.2)
    _, shuffled, _ = split_holdout(df.sample(frac=1, random_state=3), 0.2)
    assert set(shuffled["listing_key"]) == set(holdout["listing_key"]), "row order changes nothing"
    # A model trained later on more data holds out mostly the same cars: the judgement needs cars neither trained on.
    _, earlier, _ = split_holdout(df.head(300), 0.2)
    assert len(set(earlier["listing_key"]) & set(holdout["listing_key"])) > 0.7 * len(earlier)
    _, other_seed, _ = split_holdout(df, 0.2, seed=8)
    assert set(other_seed["listing_key"]) != set(holdout["listing_key"])


def test_a_lopsided_newest_moment_is_too_few_to_split_by():
    df = frame()
    # One listing in 50 is on the newest day: a holdout of 2% says too little about new listings.
    df["listed_at"] = pd.Timestamp("2026-11-01") + pd.to_timedelta((df.index % 50 == 0).astype(int), unit="D")
    _, _, split = split_holdout(df, 0.2)
    assert split.kind == FIRST_SEEN
    assert "their 2 distinct moments cannot hold out 20% of 200 listings (the nearest holds out 4, 2%" in split.why


def test_holdout_fraction_must_be_a_share():
    with pytest.raises(ValueError, match="between 0 and 1"):
        split_holdout(frame(), 1.5)


def test_a_split_survives_the_registry_and_says_what_it_did():
    _, _, split = split_holdout(one_crawl(without_dates(frame())), 0.2)
    assert Split.from_dict(split.to_dict()) == split
    assert split.summary().startswith("40 listings held out at random by car (seeded hash of car_key, seed 7), "
                                      "because listing dates could not split the data")
    _, _, dated = split_holdout(frame(), 0.2)
    assert Split.from_dict(dated.to_dict()) == dated
    assert dated.summary() == "40 listings listed on or after 2026-11-09 held out"


def test_rows_a_model_never_trained_on():
    df = frame()
    trained_at = pd.Timestamp("2026-11-29 12:00", tz="UTC")
    _, holdout, by_date = split_holdout(df, 0.2)
    unseen = never_trained_on(df, by_date, trained_at)
    # Held out by date, or first seen after the model was trained (the last two crawls).
    assert unseen.equals(df["listed_at"].ge(by_date.cutoff) | df["first_seen_at"].gt(trained_at.tz_localize(None)))
    single = one_crawl(without_dates(df))
    _, holdout, at_random = split_holdout(single, 0.2)
    keys = set(holdout["listing_key"])
    assert never_trained_on(single, at_random, CRAWL + pd.Timedelta(hours=1), keys).equals(
        single["listing_key"].isin(keys))
    # Without the held-out keys, only the listings that arrived after it count.
    assert not never_trained_on(single, at_random, CRAWL + pd.Timedelta(hours=1), None).any()
    # A row with no listing date counts as trained on by a model split by listing date, unless it arrived later.
    undated = df.assign(listed_at_stated=False)
    assert never_trained_on(undated, by_date, trained_at).equals(
        df["first_seen_at"].gt(trained_at.tz_localize(None)))


def test_the_early_stopping_fold_needs_no_dates():
    clean = clean_frame_from_market(500, seed=3, day=40)
    # One import of a file without dates: dated the import day (not stated), all first seen at once.
    clean = clean.assign(listed_at="2026-11-27", listed_at_stated=False, first_seen_at="2026-11-27T10:00:00+00:00")
    model = modeling.train_model(build_features(clean))
    assert model.early_stopping_split["kind"] == GROUPED_RANDOM
    assert model.early_stopping_split["n_holdout"] >= modeling.MIN_CALIBRATION_ROWS
    assert model.interval[0] < 0 < model.interval[1]
