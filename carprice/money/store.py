"""The warehouse side of money: the ``exchange_rates`` table, and listings priced in the market currency.

A listing row keeps the amount and currency its page stated (``price``, ``currency``); the market price is computed
where the platform reads raw rows (validation's profiles, cleaning), with the rates in force on the listing's date:
``listed_at``, else the day it was scraped. A row whose currency has no rate on that date gets no market price and
a ``price_problem`` saying why, so it is excluded with that reason and never dropped silently.
"""

from __future__ import annotations

from datetime import UTC, datetime

import duckdb

from carprice.money.rates import BASE, Money, RatesError

DDL = [
    """CREATE TABLE IF NOT EXISTS exchange_rates (
        valid_from DATE NOT NULL, currency VARCHAR NOT NULL, per_eur DOUBLE NOT NULL, origin VARCHAR,
        loaded_at TIMESTAMPTZ, PRIMARY KEY (currency, valid_from))""",
    # The currency the warehouse's prices, references, models and valuations are in: set by the first batch.
    "CREATE TABLE IF NOT EXISTS market_currency (currency VARCHAR NOT NULL, since TIMESTAMPTZ NOT NULL)",
]

# The date whose rates convert a listing's price: its listing date, else the day it was scraped.
PRICE_DAY_SQL = ("coalesce(try_cast(substr(listed_at, 1, 10) AS DATE), "
                 "try_cast(substr(scraped_at, 1, 10) AS DATE))")


def store_rates(con: duckdb.DuckDBPyConnection, money: Money) -> int:
    """Make ``exchange_rates`` hold exactly ``money``'s rates (a rate file may have been updated); returns rows.

    A warehouse keeps the market currency it started with: its references, models and valuations are in it, so
    another one is a RatesError (a new data folder starts an installation in another currency)."""
    now = datetime.now(UTC)
    held = con.execute("SELECT currency, since FROM market_currency LIMIT 1").fetchone()
    if held is None:
        con.execute("INSERT INTO market_currency VALUES (?, ?)", [money.currency, now])
    elif held[0] != money.currency:
        raise RatesError(f"this warehouse prices in {held[0]} (since {held[1]:%Y-%m-%d}); the installation's market "
                         f"currency is now {money.currency}: its references, models and valuations are in {held[0]}, "
                         f"so keep CARPRICE_MARKET_CURRENCY={held[0]}, or start a new data folder for {money.currency}")
    con.execute("DELETE FROM exchange_rates")
    if money.rates:
        con.executemany("INSERT INTO exchange_rates (valid_from, currency, per_eur, origin, loaded_at) "
                        "VALUES (?, ?, ?, ?, ?)",
                        [[r.valid_from, r.currency, r.per_eur, money.origin, now] for r in money.rates])
    return len(money.rates)


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def priced_sql(relation: str, market_currency: str) -> str:
    """A query over ``relation`` (raw listing rows) adding ``market_price`` and ``price_problem``.

    ``market_price`` is the stated price in ``market_currency`` at the rates in force on the price day (an ASOF join
    takes each currency's newest rate on or before that day, never a later one); ``price_problem`` says why a stated
    price has none ("no exchange rate: USD on 2023-05-01").
    """
    market = _literal(market_currency)
    base = _literal(BASE)
    return f"""
        WITH rows AS (SELECT *, {PRICE_DAY_SQL} AS price_day FROM {relation}),
        rated AS (
            SELECT r.*, CASE WHEN r.currency = {base} THEN 1.0 ELSE src.per_eur END AS _source_rate
            FROM rows r ASOF LEFT JOIN exchange_rates src
                ON src.currency = r.currency AND r.price_day >= src.valid_from),
        both_rated AS (
            SELECT r.*, CASE WHEN {market} = {base} THEN 1.0 ELSE mkt.per_eur END AS _market_rate
            FROM rated r ASOF LEFT JOIN (SELECT * FROM exchange_rates WHERE currency = {market}) mkt
                ON r.price_day >= mkt.valid_from)
        SELECT * EXCLUDE (_source_rate, _market_rate),
               CASE WHEN price IS NULL OR currency IS NULL THEN NULL
                    WHEN currency = {market} THEN price
                    ELSE round(price * _market_rate / _source_rate, 2) END AS market_price,
               CASE WHEN price IS NULL THEN NULL
                    WHEN currency IS NULL THEN 'price without currency'
                    WHEN currency = {market} THEN NULL
                    WHEN price_day IS NULL THEN 'no exchange rate: ' || currency || ' on an unknown date'
                    WHEN _source_rate IS NULL THEN 'no exchange rate: ' || currency || ' on ' || price_day
                    WHEN _market_rate IS NULL THEN 'no exchange rate: ' || {market} || ' on ' || price_day
               END AS price_problem
        FROM both_rated"""
