"""Prices in the warehouse: converted where raw rows are read, at the rate of the listing's date; a currency with
no rate is excluded from cleaning with its reason while the rest of the batch goes on."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pytest

from carprice.cleaning import store as cleaning_store
from carprice.cleaning.rules import clean_observations
from carprice.money.rates import Money, RatesError, parse_rates
from carprice.validation import store as validation_store
from carprice.validation.profile import profile_rows
from carprice.warehouse import Warehouse

RATES = "date,currency,per_eur\n2025-01-01,USD,1.04\n2026-01-01,USD,1.17\n2025-01-01,GBP,0.84\n"
USD = Money("USD", tuple(parse_rates(RATES)), "test")
EUR = Money("EUR", tuple(parse_rates(RATES)), "test")


def raw_row(url: str, price: float, currency: str | None, listed_at: str | None, scraped_at="2026-03-01T10:00:00"):
    return {"batch_id": "b1", "ingested_at": datetime.now(UTC), "url": f"http://site.example/{url}", "source": "s",
            "scraped_at": scraped_at, "page_format": "json-ld", "make": "Ford", "model": "Focus", "model_year": 2019,
            "mileage_km": 60_000.0 + len(url), "price": price, "currency": currency, "listed_at": listed_at,
            "listed_at_raw": listed_at}


def warehouse_with(tmp_path, rows: list[dict]) -> Warehouse:
    wh = Warehouse(tmp_path / "warehouse.duckdb")
    with wh.transaction() as con:
        con.register("incoming", pd.DataFrame(rows))
        con.execute("INSERT INTO raw_listings BY NAME SELECT * FROM incoming")
        con.execute("INSERT INTO batches (batch_id, source, ingested_at, started_at) VALUES ('b1', 's', now(), now())")
        validation_store.record_verdict(con, "b1", status="accepted", reason="test", decided_by="test", checks=[],
                                        profile={}, reference_id=None, at=datetime.now(UTC))
    return wh


def test_each_price_is_converted_at_the_rate_of_its_listing_date(tmp_path):
    wh = warehouse_with(tmp_path, [
        raw_row("a", 10_000, "EUR", "2025-06-01"),      # a 2025 listing: the 2025 rate, though 2026 has one
        raw_row("b", 10_000, "EUR", "2026-02-01"),
        raw_row("c", 10_000, "EUR", None),              # no listing date: the day it was scraped (2026)
        raw_row("d", 8_400, "GBP", "2025-06-01"),
        raw_row("e", 9_000, "USD", "2020-01-01"),       # already in the market currency: no rate needed
    ])
    raw = cleaning_store.admitted_raw_listings(wh, USD).set_index("url")
    prices = raw["market_price"].rename(lambda u: u.rsplit("/", 1)[-1]).to_dict()
    assert prices == {"a": 10_400.0, "b": 11_700.0, "c": 11_700.0, "d": 10_400.0, "e": 9_000.0}
    assert raw["price_problem"].isna().all()
    stored = wh.query("SELECT currency, count(*) AS n FROM exchange_rates GROUP BY 1 ORDER BY 1")
    assert stored.to_dict("list") == {"currency": ["GBP", "USD"], "n": [1, 2]}


def test_a_currency_without_a_rate_is_excluded_with_its_reason_and_the_rest_goes_on(tmp_path):
    wh = warehouse_with(tmp_path, [
        raw_row("kept", 15_000, "EUR", "2026-02-01"),
        raw_row("gbp", 12_000, "GBP", "2026-02-01"),
        raw_row("yen", 2_000_000, "JPY", "2026-02-01"),      # no rate at all
        raw_row("early", 12_000, "GBP", "2024-06-01"),       # before the first GBP rate
    ])
    raw = cleaning_store.admitted_raw_listings(wh, EUR)
    assert len(raw) == 4, "raw rows are all read, none lost"
    clean, excluded = clean_observations(raw, {"s": "b1"}, pd.Timestamp("2026-03-02"), *("EUR", EUR.price_range))
    assert sorted(u.rsplit("/", 1)[-1] for u in clean["url"]) == ["gbp", "kept"]
    assert clean.set_index("price")["market_price"].to_dict() == {15_000: 15_000.0, 12_000: 14_285.71}
    reasons = {u.rsplit("/", 1)[-1]: r for u, r in zip(excluded["url"], excluded["reason"])}
    assert reasons == {"yen": "no exchange rate: JPY on 2026-02-01", "early": "no exchange rate: GBP on 2024-06-01"}
    # Validation sees the same: the batch profile counts the listings it cannot price, by currency.
    with wh.connect() as con:
        profile = profile_rows(con, ["b1"], EUR)
    assert profile["unrated_currencies"] == {"JPY": 0.25, "GBP": 0.25}
    assert profile["median_market_price"] == 14_642.855


def test_a_warehouse_keeps_the_market_currency_it_started_with(tmp_path):
    wh = warehouse_with(tmp_path, [raw_row("a", 10_000, "EUR", "2026-02-01")])
    cleaning_store.admitted_raw_listings(wh, USD)
    with pytest.raises(RatesError, match=r"this warehouse prices in USD .*market currency is now EUR.*new data folder"):
        cleaning_store.admitted_raw_listings(wh, EUR)
    assert wh.query("SELECT currency FROM market_currency")["currency"].tolist() == ["USD"]


def test_rows_without_a_market_rate_are_counted_under_the_currency_that_lacks_it(tmp_path):
    # A GBP installation whose rates start in 2025: a 2024 euro price has no GBP rate to convert it with.
    gbp = Money("GBP", tuple(parse_rates(RATES)), "test")
    wh = warehouse_with(tmp_path, [raw_row("old", 10_000, "EUR", "2024-06-01"),
                                   raw_row("new", 10_000, "EUR", "2026-02-01")])
    with wh.connect() as con:
        profile = profile_rows(con, ["b1"], gbp)
    assert profile["unrated_currencies"] == {"GBP": 0.5}
