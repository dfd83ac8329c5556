"""Cleaning on tiny frames: latest observations, current listings, exclusions with reasons, reposts."""

from __future__ import annotations

import pandas as pd

from carprice.cleaning import rules as cleaning

TODAY = pd.Timestamp("2026-06-01")


def row(**kw):
    base = dict(url="http://127.0.0.1:8000/cars/1-vw-golf", source="automarkt", batch_id="b1",
                scraped_at="2026-05-01T10:00:00", title="VW Golf", description="", make="Volkswagen",
                model="Golf", model_year=2018, first_registration="2018-05-01", mileage_km=80000.0,
                fuel="petrol", transmission="manual", body="hatchback", power_kw=110.0, color="grey",
                doors=5, condition="good", market_price=15000.0, price=15000.0, currency="EUR", seller_type="dealer",
                region="Bavaria", listed_at_raw="2026-04-20", listed_at="2026-04-20")
    return {**base, **kw}


def frame(*rows):
    return pd.DataFrame(list(rows))


def test_latest_observation_wins_and_survives_a_new_port():
    raw = frame(row(), row(url="http://127.0.0.1:9999/cars/1-vw-golf", batch_id="b2",
                           scraped_at="2026-05-08T10:00:00", market_price=14000.0))
    latest = cleaning.latest_observations(raw)
    assert len(latest) == 1
    only = latest.iloc[0]
    assert only["market_price"] == 14000.0
    assert only["listing_key"] == "automarkt:/cars/1-vw-golf"
    assert only["first_seen_at"] == "2026-05-01T10:00:00" and only["last_seen_at"] == "2026-05-08T10:00:00"


def test_current_means_in_the_sources_newest_batch():
    df = frame(row(batch_id="b1"), row(url="u2", batch_id="b2"), row(url="u3", source="other", batch_id="o1"))
    assert cleaning.mark_current(df, {"automarkt": "b2", "other": "o1"}).tolist() == [False, True, True]


def test_each_impossible_value_is_excluded_with_its_reason():
    df = frame(row(market_price=None), row(market_price=1.0), row(market_price=9_999_999.0), row(model_year=None),
               row(model_year=2031), row(mileage_km=-5.0), row(mileage_km=2_000_000.0), row(power_kw=5000.0),
               row())
    reasons = cleaning.exclusion_reasons(df, TODAY).tolist()
    assert reasons == ["price missing or unreadable", "price below 300 EUR", "price above 500000 EUR",
                       "model year missing", "model year in the future", "negative mileage",
                       "mileage above 1,000,000 km", "power above 1,200 kW", None]


def test_price_far_from_its_peers_is_a_typo():
    peers = [row(url=f"u{i}", market_price=15000.0 + 100 * i, mileage_km=80000.0 + i) for i in range(6)]
    typo = row(url="typo", market_price=150_000.0, mileage_km=1.0)
    reasons = cleaning.exclusion_reasons(frame(*peers, typo), TODAY)
    assert reasons.iloc[-1].startswith("implausible price: 9.")
    assert reasons.iloc[:-1].isna().all()


def test_small_groups_are_not_judged_by_their_median():
    df = frame(row(url="a", market_price=15000.0), row(url="b", market_price=150_000.0, mileage_km=5.0))
    assert cleaning.exclusion_reasons(df, TODAY).isna().all()


def test_a_rare_year_is_judged_against_its_model_then_its_make():
    peers = [row(url=f"u{i}", model_year=2010 + i, market_price=9000.0 + 100 * i) for i in range(6)]
    typo = row(url="typo", model_year=2022, market_price=491_636.0)
    other_model = [row(url=f"p{i}", model="Polo", model_year=2000 + i, market_price=5000.0) for i in range(5)]
    lone = row(url="lone", model="Up", model_year=2021, market_price=400_000.0)
    reasons = cleaning.exclusion_reasons(frame(*peers, typo, *other_model, lone), TODAY)
    assert reasons.iloc[6].startswith("implausible price: 5")
    assert reasons.iloc[-1].startswith("implausible price: "), "no model peers: the make's median decides"
    assert reasons.iloc[:6].isna().all() and reasons.iloc[7:-1].isna().all()


def test_reposted_car_keeps_only_the_newest_post():
    old = row(url="old", listed_at="2026-03-01")
    new = row(url="new", listed_at="2026-04-01", market_price=14500.0)
    other = row(url="other", mileage_km=81000.0)
    no_mileage_a, no_mileage_b = row(url="na", mileage_km=None), row(url="nb", mileage_km=None)
    df = frame(old, new, other, no_mileage_a, no_mileage_b)
    df["last_seen_at"] = "2026-05-01"
    assert cleaning.repost_of(df).tolist() == ["new", None, None, None, None]


def test_clean_listings_splits_rows_and_loses_none():
    raw = frame(row(url="a"), row(url="b", market_price=1.0), row(url="c", listed_at="2026-01-01"),
                row(url="d", listed_at="2026-02-01"))
    clean, excluded = cleaning.clean_observations(raw, {"automarkt": "b1"}, TODAY)
    # Reposts of one car stay listings (each URL is valued) and name the newest post, the one training uses.
    assert sorted(clean["url"]) == ["a", "c", "d"]
    assert dict(zip(clean["url"], clean["repost_of"])) == {"a": None, "c": "a", "d": "a"}
    assert len(clean) + len(excluded) == raw["url"].nunique()
    assert dict(zip(excluded["url"], excluded["reason"])) == {"b": "price below 300 EUR"}
    assert "repost_of" not in excluded.columns
    assert cleaning.reason_counts(excluded) == {"price below 300 EUR": 1}
    assert clean["is_current"].all()


def test_a_listing_date_the_source_never_stated_is_marked_as_such():
    # The spider gives a listing without a stated date the day it was crawled; training must not take it for one.
    raw = frame(row(url="a"), row(url="b", mileage_km=5000.0, listed_at_raw=None, listed_at="2026-05-01"))
    clean, _ = cleaning.clean_observations(raw, {"automarkt": "b1"}, TODAY)
    assert dict(zip(clean["url"], clean["listed_at_stated"])) == {"a": True, "b": False}


def test_car_identity_is_unknown_when_too_little_is_known():
    identity = cleaning.car_identity(frame(row(url="a"), row(url="b"), row(url="c", mileage_km=None)))
    assert identity.iloc[0] == identity.iloc[1] and identity.iloc[2] is None


def test_clean_listings_of_nothing_is_empty_not_an_error():
    clean, excluded = cleaning.clean_observations(pd.DataFrame(), {}, TODAY)
    assert clean.empty and excluded.empty and "reason" in excluded
