"""Rate files: reading them (bad input names its line), and the rate in force on a listing's date."""

from __future__ import annotations

from datetime import date

import pytest

from carprice.config import load_settings
from carprice.money.rates import SHIPPED_RATES, Money, RatesError, load_money, parse_rates

RATES = """# a comment
date,currency,per_eur
2025-01-01,USD,1.04
2026-01-01,USD,1.17
2025-01-01,GBP,0.84
"""


def test_a_rate_file_is_read_sorted_by_currency_and_date():
    rates = parse_rates(RATES)
    assert [(r.currency, r.valid_from, r.per_eur) for r in rates] == [
        ("GBP", date(2025, 1, 1), 0.84), ("USD", date(2025, 1, 1), 1.04), ("USD", date(2026, 1, 1), 1.17)]


@pytest.mark.parametrize(("text", "message"), [
    ("", "empty"),
    ("date,currency\n2025-01-01,USD\n", "line 1: header 'date,currency' lacks column(s) per_eur"),
    ("date,currency,per_eur\n2025-13-01,USD,1.1\n", "line 2: date '2025-13-01' is not YYYY-MM-DD"),
    ("date,currency,per_eur\n2025-01-01,USD,1.1\n01/02/2025,USD,1.1\n", "line 3: date '01/02/2025'"),
    ("date,currency,per_eur\n2025-01-01,USD,-1.1\n", "line 2: rate '-1.1' must be a positive number"),
    ("date,currency,per_eur\n2025-01-01,USD,0\n", "line 2: rate '0' must be a positive number"),
    ("date,currency,per_eur\n2025-01-01,USD,abc\n", "line 2: rate 'abc' is not a number"),
    ("date,currency,per_eur\n2025-01-01,usd,1.1\n", "line 2: currency 'usd' is not an ISO 4217 code"),
    ("date,currency,per_eur\n2025-01-01,DOLLAR,1.1\n", "line 2: currency 'DOLLAR' is not an ISO 4217 code"),
    ("date,currency,per_eur\n2025-01-01,USD\n", "line 2: 2 values for 3 columns"),
    ("date,currency,per_eur\n2025-01-01,EUR,1.1\n", "line 2: the euro is the base"),
    ("date,currency,per_eur\n2025-01-01,USD,1.1\n\n2025-01-01,USD,1.2\n", "line 4: a second rate for USD on 2025-01-01 "
                                                                         "(line 2 has one)"),
])
def test_bad_rate_files_name_the_line(text, message):
    with pytest.raises(RatesError, match="rates.csv") as caught:
        parse_rates(text, "rates.csv")
    assert message in str(caught.value)


def test_the_rate_in_force_on_the_listing_date_is_used_never_a_later_one():
    usd = Money("USD", tuple(parse_rates(RATES)))
    # A 2025 listing uses the 2025 rate although a 2026 rate exists; a 2026 listing the 2026 one.
    assert usd.convert(10_000, "EUR", date(2025, 12, 31)) == 10_400.0
    assert usd.convert(10_000, "EUR", date(2026, 1, 1)) == 11_700.0
    assert usd.convert(8_400, "GBP", date(2025, 6, 1)) == 10_400.0
    assert usd.convert(100, "USD", date(1990, 1, 1)) == 100  # its own currency needs no rate
    # Before a currency's first rate there is none: no later rate is taken for an earlier price.
    assert usd.convert(10_000, "EUR", date(2024, 12, 31)) is None
    assert usd.convert(10_000, "JPY", date(2025, 6, 1)) is None


def test_the_plausible_price_range_is_in_the_market_currency():
    assert Money("EUR", ()).price_range == (300.0, 500_000.0)
    assert Money("USD", tuple(parse_rates(RATES))).price_range == (351.0, 585_000.0)  # the newest USD rate
    with pytest.raises(RatesError, match="no rate for the market currency CHF"):
        _ = Money("CHF", tuple(parse_rates(RATES))).price_range


def test_an_installation_reads_its_own_rate_file_else_the_shipped_one(tmp_path):
    settings = load_settings({"CARPRICE_DATA_DIR": str(tmp_path), "CARPRICE_MARKET_CURRENCY": "usd"})
    assert settings.market_currency == "USD"
    assert settings.money().origin == str(SHIPPED_RATES)
    for code in ("USD", "GBP", "CHF", "PLN", "SEK", "DKK"):
        assert {r.valid_from.year for r in settings.money().rates if r.currency == code} == {2024, 2025, 2026}
    (tmp_path / "rates.csv").write_text(RATES, encoding="utf-8")
    assert settings.money().rates == tuple(parse_rates(RATES))
    (tmp_path / "rates.csv").write_text("date,currency,per_eur\n2025-01-01,USD,x\n", encoding="utf-8")
    with pytest.raises(RatesError, match=r"rates.csv line 2: rate 'x' is not a number"):
        settings.money()


def test_a_market_currency_without_rates_is_refused_at_once(tmp_path):
    (tmp_path / "rates.csv").write_text(RATES, encoding="utf-8")
    with pytest.raises(RatesError, match="no rate for the market currency SEK"):
        load_money("SEK", tmp_path / "rates.csv")
    with pytest.raises(ValueError, match="ISO 4217"):
        load_settings({"CARPRICE_DATA_DIR": str(tmp_path), "CARPRICE_MARKET_CURRENCY": "dollars"})


def test_the_code_locations_currency_is_read_in_any_case_and_checked():
    # The deployed code location hands the environment's text to the warehouse resource as it is.
    assert load_money(" usd ").currency == "USD"
    with pytest.raises(RatesError, match="'DOLLARS' is not an ISO 4217 code"):
        load_money("dollars")
