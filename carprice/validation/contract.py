"""The data contract for landed listings: columns and types, required fields, ranges, tracked fields.

Columns and types come from the item the spiders write (scrapers.items.CarListing); ranges and the
fields watched for drift are written here; the expected values of everything else are learned from
admitted batches (see profile.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from carprice.ingest.store import ADDED_COLUMNS, LISTING_COLUMNS, RETIRED_COLUMNS

# Fields a listing cannot be priced without; the spider already rejects rows missing them.
REQUIRED = ("url", "make", "model", "price", "currency")


@dataclass(frozen=True)
class Range:
    low: float
    high: float


# Columns a landed file may lack: added after spiders that did not write them had landed batches; ingest reads
# them as null, so such a batch is as usable as it was before.
OPTIONAL_COLUMNS = ADDED_COLUMNS
# Columns earlier spiders wrote and the contract no longer has: a batch landed by one is read without them.
IGNORED_COLUMNS = RETIRED_COLUMNS

# Plausible ranges: a value outside is suspicious (a placeholder price, a typo), and its share is compared with
# the source's own reference; sites differ in how many such listings they carry. The market price's range is the
# installation's (carprice.money: PLAUSIBLE_PRICE_EUR in its currency), given to the profile with the rates.
RANGES = {
    "mileage_km": Range(0, 1_000_000),
    "model_year": Range(1950, 2100),
    "power_kw": Range(20, 1_200),
    "doors": Range(1, 7),
}

# Values no real listing can have, as SQL over a raw row: the absolute contract. The spider already rejects
# negative prices and mileages; a file or a hand-edited batch may still carry them.
IMPOSSIBLE = {
    "price": "price < 0",
    "mileage_km": "mileage_km < 0",
    "model_year": "model_year < 1886 OR model_year > year(try_cast(scraped_at AS TIMESTAMPTZ)) + 1",
    "power_kw": "power_kw <= 0 OR power_kw > 2000",
    "doors": "doors < 0 OR doors > 9",
}

# Fields whose null rate is compared with the reference.
NULL_TRACKED = ("make", "model", "model_year", "mileage_km", "fuel", "transmission", "body", "power_kw",
                "price", "currency", "seller_type", "region", "listed_at", "first_registration")
CATEGORICAL_DRIFT = ("make", "fuel", "transmission", "body", "seller_type", "region", "currency")
NUMERIC_DRIFT = ("log_market_price", "mileage_km", "model_year", "power_kw")

# Profile keys an earlier version named after euros, and their names now (references stored then were in euros).
RENAMED_PROFILE_KEYS = {
    ("null_rate", "price_eur"): ("null_rate", "price"),
    ("impossible_rate", "price_eur"): ("impossible_rate", "price"),
    ("out_of_range_rate", "price_eur"): ("out_of_range_rate", "market_price"),
    ("quantiles", "log_price_eur"): ("quantiles", "log_market_price"),
    ("median_price_eur",): ("median_market_price",),
}

# DuckDB type families: a landed column is retyped when its family differs from the contract's.
_FAMILY = {"VARCHAR": "text", "DATE": "text", "TIMESTAMP": "text", "TIMESTAMP WITH TIME ZONE": "text",
           "TIME": "text", "UUID": "text", "BIGINT": "number", "INTEGER": "number", "DOUBLE": "number",
           "FLOAT": "number", "SMALLINT": "number", "TINYINT": "number", "UBIGINT": "number",
           "HUGEINT": "number", "DECIMAL": "number", "BOOLEAN": "boolean", "NULL": "null", "JSON": "null"}


def type_family(duckdb_type: str) -> str:
    """"text", "number", "boolean", "null" (an all-null column), or "nested" for structs and lists."""
    base = duckdb_type.split("(")[0].strip().strip('"').upper()
    if base.endswith("[]") or base.startswith(("STRUCT", "MAP", "LIST", "UNION")):
        return "nested"
    return _FAMILY.get(base, "other")


def contract_columns() -> dict[str, str]:
    """Contract column -> type family."""
    return {name: type_family(sql) for name, sql in LISTING_COLUMNS.items()}
