"""Training and judgement on listings without usable dates: every case ends in a decision, never an exception.

A real DuckDB file in tmp; models are trained by ``train_challenger`` and judged by ``judge_challenger``.
"""

from __future__ import annotations

import pandas as pd
import pytest

from carprice.config import PromotionConfig
from carprice.training.challenger import train_challenger
from carprice.training.features import build_features
from carprice.training.promotion import judge_challenger
from carprice.training.registry import HELD_OUT_FILE, champion, get_model, held_out_keys, promote
from carprice.warehouse import Warehouse
from carprice_tests.conftest import clean_frame_from_market

# A promotion loads the challenger in a child process (the servability check): the integration tier.
pytestmark = pytest.mark.integration

CFG = PromotionConfig(backtest_folds=0)
# Listings imported before and after the first model: the first 2,300 and the other 700.
FIRST = 2300


@pytest.fixture(scope="module")
def features() -> pd.DataFrame:
    return build_features(clean_frame_from_market(3000, seed=5, day=40))


def now() -> pd.Timestamp:
    return pd.Timestamp.now(tz="UTC").tz_localize(None)


def imported(features: pd.DataFrame, at: pd.Timestamp) -> pd.DataFrame:
    """As a file without a date column lands: dated the import day (not stated), first seen at the import."""
    return features.assign(listed_at=at.normalize(), listed_at_stated=False, first_seen_at=at)


def train(wh: Warehouse, tmp_path, data: pd.DataFrame):
    # What is judged is the split, not the recipe: no recipe search (it has its own tests).
    return train_challenger(wh, data, tmp_path / "models", holdout_fraction=0.2, params={}, reference_rows=300,
                            trained_because="test", select=False)


def test_a_first_model_without_dates_is_judged_on_the_cars_it_held_out(tmp_path, features):
    wh = Warehouse(tmp_path / "wh.duckdb")
    data = imported(features, now() - pd.Timedelta(days=1))
    trained = train(wh, tmp_path, data)
    result = judge_challenger(wh, data, CFG)
    assert result.promoted and result.reason.startswith("first model; beats the baselines"), result.reason
    assert result.n_eval == trained.n_holdout and result.eval_from is None
    assert (f"; evaluated on {trained.n_holdout} listings the challenger held out (held out at random by car), "
            "because listing dates could not split the data (no listing has one); nor could first-seen times (all "
            f"{len(data)} are the same") in result.reason
    assert result.scores["backtest"] == {"skipped": "the models were not both split by listing date"}
    stored = wh.query("SELECT eval_from, n_eval, reason FROM model_evaluations").iloc[0]
    assert pd.isna(stored["eval_from"]) and stored["n_eval"] == result.n_eval and stored["reason"] == result.reason
    assert champion(wh).split.kind == "grouped_random"


def test_listings_that_arrive_later_judge_a_model_split_at_random(tmp_path, features):
    wh = Warehouse(tmp_path / "wh.duckdb")
    first_import = imported(features.iloc[:FIRST], now() - pd.Timedelta(days=1))
    first = train(wh, tmp_path, first_import)
    promote(wh, first.saved.version, "seeded for the test")
    # A second import after the champion was trained: its listings are new to the champion.
    arrived = now()
    data = pd.concat([first_import, imported(features.iloc[FIRST:], arrived)], ignore_index=True)
    second = train(wh, tmp_path, data)
    assert second.split.kind == "first_seen" and second.split.cutoff == arrived
    result = judge_challenger(wh, data, CFG)
    assert result.n_eval == len(features) - FIRST, "the new listings: the challenger held them out, the champion " \
                                                   "never saw them"
    assert ("listings the challenger held out (first seen on or after "
            f"{arrived:%Y-%m-%d %H:%M}) that the champion never trained on (held out at random by car, or first "
            "seen after it was trained), because listing dates could not split the data (no listing has one); "
            "when the champion was trained, listing dates could not split the data") in result.reason
    assert wh.count("model_evaluations") == 1


def test_two_models_split_at_random_are_judged_on_the_cars_neither_trained_on(tmp_path, features):
    wh = Warehouse(tmp_path / "wh.duckdb")
    crawled = now() - pd.Timedelta(days=1)
    first_import = imported(features.iloc[:FIRST], crawled)
    first = train(wh, tmp_path, first_import)
    promote(wh, first.saved.version, "seeded for the test")
    # Ten minutes later: one moment with the first, so first-seen times cannot split them either.
    data = pd.concat([first_import, imported(features.iloc[FIRST:], crawled + pd.Timedelta(minutes=10))],
                     ignore_index=True)
    second = train(wh, tmp_path, data)
    assert second.split.kind == "grouped_random"
    result = judge_challenger(wh, data, CFG)
    neither = (data["listing_key"].isin(held_out_keys(get_model(wh, second.saved.version)))
               & data["listing_key"].isin(held_out_keys(get_model(wh, first.saved.version))))
    assert result.n_eval == neither.sum()
    # The same seeded hash holds out mostly the same cars, so the common part is most of the champion's holdout.
    assert result.n_eval > 0.7 * first.n_holdout
    assert ("listings the challenger held out (held out at random by car) that the champion never trained on (held "
            "out at random by car, or first seen after it was trained)") in result.reason


def test_a_champion_split_by_date_judges_a_challenger_without_dates(tmp_path, features):
    wh = Warehouse(tmp_path / "wh.duckdb")
    dated = features.iloc[:FIRST]
    first = train(wh, tmp_path, dated)
    assert first.split.kind == "listing_date"
    promote(wh, first.saved.version, "seeded for the test")
    # A source without dates joins: its listings arrive after the champion was trained.
    arrived = now()
    data = pd.concat([dated, imported(features.iloc[FIRST:], arrived)], ignore_index=True)
    second = train(wh, tmp_path, data)
    assert second.split.kind == "first_seen"
    assert f"only {FIRST} of {len(data)} listings have one" in second.split.why
    result = judge_challenger(wh, data, CFG)
    assert result.n_eval == len(features) - FIRST
    assert (f"that the champion never trained on (listed on or after {first.split.cutoff.date()}, or first seen "
            f"after it was trained), because listing dates could not split the data (only {FIRST} of") in result.reason


def test_too_few_rows_neither_model_trained_on_is_a_rejection_not_a_crash(tmp_path, features):
    wh = Warehouse(tmp_path / "wh.duckdb")
    data = imported(features, now() - pd.Timedelta(days=1))
    trained = train(wh, tmp_path, data)
    # Without the list of held-out listings nothing is known to be unseen.
    (trained.saved.path / HELD_OUT_FILE).unlink()
    result = judge_challenger(wh, data, CFG)
    assert not result.promoted and result.n_eval == 0
    assert result.reason.startswith("only 0 listings the challenger held out (held out at random by car), because "
                                    "listing dates could not split the data")
    assert result.reason.endswith("need 30 to judge")

