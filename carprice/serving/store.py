"""What the price API reads from the published snapshot, opened read-only: the names of the cars the warehouse has
seen, what the champion learned from, the current listings with their valuations, and the rated listings for
``GET /deals``. Every value a client sends reaches SQL as a parameter."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from carprice.serving.rating import RATINGS, rating_sql
from carprice.training.registry import RegisteredModel, held_out_keys
from carprice.training.splitting import as_naive_utc
from carprice.warehouse import Warehouse

# A snapshot is replaced by a rename, never held open for writing: a reader waits for nothing.
SNAPSHOT_LOCK_WAIT_S = 5.0
# Columns a split may name as its time column (from the registry; checked before they become SQL).
_TIME_COLUMNS = {"listed_at", "first_seen_at"}
# What the numeric training ranges are taken over: the features an owner types in.
RANGE_COLUMNS = ("model_year", "mileage_km", "power_kw")


def open_snapshot(path: Path) -> Warehouse:
    """The published snapshot as a read-only warehouse (the registry functions read it like the live one)."""
    return Warehouse(path, lock_wait_s=SNAPSHOT_LOCK_WAIT_S, read_only=True)


def has_table(wh: Warehouse, table: str) -> bool:
    """Whether the snapshot holds ``table`` (tables built by assets appear on their first run)."""
    found = wh.query("SELECT count(*) AS n FROM information_schema.tables WHERE table_name = ?", [table])
    return bool(found["n"].iloc[0])


def known_cars(wh: Warehouse) -> pd.DataFrame:
    """Every make and model the warehouse has seen (lower-cased keys, the spelling most listings use, and
    listings)."""
    if not has_table(wh, "clean_listings"):
        return pd.DataFrame(columns=["make_key", "model_key", "make", "model", "listings"])
    return wh.query("""SELECT lower(trim(make)) AS make_key, lower(trim(model)) AS model_key,
                              mode(make) AS make, mode(model) AS model, count(*) AS listings
                       FROM clean_listings WHERE make IS NOT NULL AND model IS NOT NULL
                       GROUP BY ALL ORDER BY make_key, model_key""")


def _training_rows_sql(model: RegisteredModel) -> tuple[str, list]:
    """The feature rows ``model`` could learn from: reposts left out; on a time split, those before its cutoff; on a
    random split, those first seen by the time it was trained, less the listings it held out."""
    sql = "FROM listing_features f JOIN clean_listings c USING (url) WHERE c.repost_of IS NULL"
    split = model.split
    if split.cutoff is not None and split.time_column in _TIME_COLUMNS:
        return f"{sql} AND f.{split.time_column} < ?", [split.cutoff.to_pydatetime()]
    sql, params = f"{sql} AND f.first_seen_at <= ?", [as_naive_utc(model.trained_at).to_pydatetime()]
    held_out = held_out_keys(model)
    if held_out:
        sql, params = f"{sql} AND f.listing_key NOT IN (SELECT unnest(?::VARCHAR[]))", [*params, sorted(held_out)]
    return sql, params


def training_listings(wh: Warehouse, model: RegisteredModel) -> pd.DataFrame:
    """Per make and model (lower-cased, as the features have them): how many listings the champion learned from."""
    where, params = _training_rows_sql(model)
    return wh.query(f"SELECT f.make AS make_key, f.model AS model_key, count(*) AS listings {where} GROUP BY ALL",
                    params)


def training_ranges(wh: Warehouse, model: RegisteredModel) -> dict[str, tuple[float, float]]:
    """The smallest and largest model year, mileage and power the champion learned from."""
    where, params = _training_rows_sql(model)
    parts = ", ".join(f"min(f.{c}) AS min_{c}, max(f.{c}) AS max_{c}" for c in RANGE_COLUMNS)
    row = wh.query(f"SELECT {parts} {where}", params).iloc[0]
    return {c: (float(row[f"min_{c}"]), float(row[f"max_{c}"])) for c in RANGE_COLUMNS
            if pd.notna(row[f"min_{c}"])}


def check_features(wh: Warehouse, rows: int) -> pd.DataFrame:
    """A few feature rows of current listings, to check a model predicts before it serves."""
    return wh.query("SELECT f.* FROM listing_features f JOIN clean_listings c USING (url) "
                    "WHERE c.is_current ORDER BY f.url LIMIT ?", [rows])


def current_valued_listings(wh: Warehouse) -> pd.DataFrame:
    """Listings on sale now (reposts left out) with their valuation: what a valuation's comparables are picked from."""
    if not has_table(wh, "listing_valuations"):
        return pd.DataFrame(columns=["url", "title", "make_key", "model_key", "model_year", "mileage_km",
                                     "power_kw", "fuel", "transmission", "region", "seller_type",
                                     "asking_price", "predicted_price", "lower_price",
                                     "upper_price", "model_version", "first_seen_at"])
    return wh.query("""SELECT c.url, c.title, lower(trim(c.make)) AS make_key, lower(trim(c.model)) AS model_key,
                              c.model_year, c.mileage_km, c.power_kw, c.fuel, c.transmission, c.region,
                              c.seller_type, v.asking_price, v.predicted_price, v.lower_price,
                              v.upper_price, v.model_version, c.first_seen_at
                       FROM clean_listings c JOIN listing_valuations v USING (url)
                       WHERE c.is_current AND c.repost_of IS NULL ORDER BY c.url""")


def data_as_of(wh: Warehouse) -> pd.Timestamp | None:
    """When the newest listing in the snapshot was last seen on its site."""
    if not has_table(wh, "clean_listings"):
        return None
    value = wh.query("SELECT max(last_seen_at) AS at FROM clean_listings")["at"].iloc[0]
    return None if pd.isna(value) else pd.Timestamp(value)


def rated_listings(wh: Warehouse, *, make: str | None = None, model: str | None = None,
                   max_price: float | None = None, region: str | None = None, min_rating: str = RATINGS[0],
                   limit: int = 50, offset: int = 0) -> tuple[pd.DataFrame, int]:
    """Current listings rated at least ``min_rating``, biggest saving first, one page of them; (page, total).

    The rating is computed in SQL from the same bounds as ``rating.rate`` (``rating_sql``).
    """
    if not has_table(wh, "listing_valuations"):
        return pd.DataFrame(), 0
    filters, params = ["c.is_current", "c.repost_of IS NULL"], []
    for sql, value in (("lower(trim(c.make)) = lower(trim(?))", make), ("lower(trim(c.model)) = lower(trim(?))", model),
                       ("v.asking_price <= ?", max_price), ("lower(trim(c.region)) = lower(trim(?))", region)):
        if value is not None:
            filters.append(sql)
            params.append(value)
    rank = RATINGS.index(min_rating)
    rated = f"""
        WITH rated AS (
            SELECT c.url, c.title, c.make, c.model, c.model_year, c.mileage_km, c.power_kw, c.fuel, c.region,
                   c.seller_type, v.asking_price, v.predicted_price, v.lower_price, v.upper_price,
                   v.saving, v.model_version,
                   {rating_sql("v.asking_price", "v.lower_price", "v.predicted_price",
                               "v.upper_price")} AS rating
            FROM clean_listings c JOIN listing_valuations v USING (url)
            WHERE {" AND ".join(filters)})
        SELECT * FROM rated WHERE list_position(?, rating) <= ?"""
    params += [list(RATINGS), rank + 1]
    with wh.connect() as con:
        total = con.execute(f"SELECT count(*) FROM ({rated})", params).fetchone()[0]
        page = con.execute(f"{rated} ORDER BY saving DESC, url LIMIT ? OFFSET ?", [*params, limit, offset]).df()
    return page, int(total)


def price_against_age(wh: Warehouse, segments: int = 5, rows: int = 2000) -> pd.DataFrame:
    """Current listings' age and asking price in the most common body types (a sample of ``rows``)."""
    if not has_table(wh, "listing_features"):
        return pd.DataFrame(columns=["segment", "age_years", "market_price"])
    # The sample size is the caller's integer (DuckDB takes only a constant there), never a client's text.
    return wh.query(f"""
        WITH current AS (SELECT f.body AS segment, f.age_years, f.market_price
                         FROM listing_features f JOIN clean_listings c USING (url)
                         WHERE c.is_current AND f.body IS NOT NULL AND f.age_years IS NOT NULL),
             top AS (SELECT segment FROM current GROUP BY segment ORDER BY count(*) DESC LIMIT ?)
        SELECT * FROM current JOIN top USING (segment) USING SAMPLE reservoir({int(rows)} ROWS) REPEATABLE (7)""",
                    [segments])


def depreciation(wh: Warehouse, models: int = 5, min_listings: int = 3) -> pd.DataFrame:
    """Median asking price by whole year of age of the most listed makes and models (every listing seen)."""
    if not has_table(wh, "listing_features"):
        return pd.DataFrame(columns=["car", "age", "median_price"])
    return wh.query("""
        WITH top AS (SELECT make, model FROM listing_features GROUP BY ALL ORDER BY count(*) DESC, make, model
                     LIMIT ?)
        SELECT f.make || ' ' || f.model AS car, floor(f.age_years) AS age, median(f.market_price) AS median_price
        FROM listing_features f JOIN top USING (make, model) WHERE f.age_years IS NOT NULL
        GROUP BY ALL HAVING count(*) >= ? ORDER BY car, age""", [models, min_listings])


def error_on_new_listings(wh: Warehouse) -> pd.DataFrame:
    """The serving model's mean absolute % error on listings new to it, per monitored batch."""
    if not has_table(wh, "monitoring_reports"):
        return pd.DataFrame(columns=["monitored_at", "model_version", "mape", "n_fresh"])
    return wh.query("SELECT monitored_at, model_version, mape, n_fresh FROM monitoring_reports "
                    "WHERE mape IS NOT NULL ORDER BY monitored_at")
