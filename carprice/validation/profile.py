"""Profiles of landed listings, computed in DuckDB: what a batch (or the reference) looks like.

A profile is a plain JSON-able dict: row counts, null and out-of-range rates, duplicate and repost
rates, quantiles of numeric fields, shares of categories, the schema.org fields pages carried and
their types, and the spider's reject rate. Checks compare a batch's profile with the reference's.
"""

from __future__ import annotations

import duckdb

from carprice.validation.contract import CATEGORICAL_DRIFT, NULL_TRACKED, NUMERIC_DRIFT, RANGES, type_family

QUANTILES = [round(0.01 * i, 2) for i in range(1, 100)]
_NUMERIC_SQL = {
    "log_price_eur": "ln(CASE WHEN price_eur > 0 THEN price_eur END)",
    "mileage_km": "mileage_km",
    "model_year": "model_year",
    "power_kw": "power_kw",
}
_PATH = r"regexp_replace(url, '^[a-zA-Z][a-zA-Z0-9+.-]*://[^/]+', '')"
_AGE = "greatest(year(try_cast(listed_at AS DATE)) - model_year + 0.5, 0.5)"


def landed_columns(con: duckdb.DuckDBPyConnection, listings_file: str) -> dict[str, str]:
    """Columns of a landed listings file as DuckDB infers them from the JSON (name -> type family)."""
    rows = con.execute("DESCRIBE SELECT * FROM read_json(?, format='newline_delimited')", [listings_file]).fetchall()
    return {name: type_family(sql_type) for name, sql_type, *_ in rows}


def profile_rows(con: duckdb.DuckDBPyConnection, batch_ids: list[str]) -> dict:
    """The profile of every listing and reject in ``batch_ids``."""
    con.execute("CREATE OR REPLACE TEMP TABLE _rows AS SELECT * FROM raw_listings WHERE list_contains(?, batch_id)",
                [batch_ids])
    try:
        return _profile(con, batch_ids)
    finally:
        con.execute("DROP TABLE IF EXISTS _rows")


def _profile(con: duckdb.DuckDBPyConnection, batch_ids: list[str]) -> dict:
    nulls = ", ".join(f"{f} := avg(({f} IS NULL)::DOUBLE)" for f in NULL_TRACKED)
    ranges = ", ".join(f"{f} := avg(({f} < {r.low} OR {f} > {r.high})::DOUBLE)" for f, r in RANGES.items())
    quantiles = ", ".join(f"{name} := quantile_cont({sql}, {QUANTILES})" for name, sql in _NUMERIC_SQL.items())
    row = con.execute(f"""
        SELECT count(*) AS n,
               struct_pack({nulls}) AS null_rate,
               struct_pack({ranges}) AS out_of_range_rate,
               struct_pack({quantiles}) AS quantiles,
               1 - count(DISTINCT coalesce(site_listing_id, {_PATH})) / greatest(count(*), 1) AS duplicate_rate,
               median(price_eur) FILTER (WHERE price_eur > 0) AS median_price_eur,
               median(mileage_km / {_AGE}) FILTER (WHERE mileage_km > 0) AS median_km_per_year
        FROM _rows""").fetchone()
    n, null_rate, out_of_range, quantiles_row, duplicate_rate, median_price, median_kmy = row
    repost = con.execute("""
        SELECT CASE WHEN count(fp) = 0 THEN 0 ELSE 1 - count(DISTINCT fp) / count(fp) END FROM (
            SELECT concat_ws('|', lower(make), lower(model), model_year, mileage_km, fuel, color, region,
                             seller_type) AS fp
            FROM _rows WHERE mileage_km IS NOT NULL AND model_year IS NOT NULL)""").fetchone()[0]
    categories = {}
    for field in CATEGORICAL_DRIFT:
        rows = con.execute(f"SELECT coalesce(lower({field}), '<null>') AS v, count(*) FROM _rows GROUP BY v").fetchall()
        categories[field] = {value: count / n for value, count in rows} if n else {}
    field_rows = con.execute("""
        SELECT j.key, json_extract_string(j.value, '$') AS type, count(*) AS c
        FROM _rows, json_each(_rows.source_fields) AS j GROUP BY ALL""").fetchall()
    source_fields: dict[str, dict] = {}
    for key, type_, count in field_rows:
        entry = source_fields.setdefault(key, {"share": 0.0, "types": {}})
        entry["share"] += count / n
        entry["types"][type_] = entry["types"].get(type_, 0) + count
    for entry in source_fields.values():
        total = sum(entry["types"].values())
        entry["types"] = {t: c / total for t, c in entry["types"].items()}
    rejects = dict(con.execute(
        "SELECT reason, count(*) FROM raw_rejects WHERE list_contains(?, batch_id) GROUP BY reason ORDER BY 2 DESC",
        [batch_ids]).fetchall())
    n_rejects = sum(rejects.values())
    return {
        "batch_ids": list(batch_ids),
        "n": int(n),
        "n_rejects": int(n_rejects),
        "reject_rate": n_rejects / (n + n_rejects) if n + n_rejects else 0.0,
        "reject_reasons": rejects,
        "null_rate": _floats(null_rate),
        "out_of_range_rate": _floats(out_of_range),
        "duplicate_rate": float(duplicate_rate or 0.0),
        "repost_rate": float(repost or 0.0),
        "median_price_eur": _float(median_price),
        "median_km_per_year": _float(median_kmy),
        "quantiles": {name: list(values) if values else None for name, values in quantiles_row.items()},
        "categories": categories,
        "source_fields": source_fields,
    }


def _float(value) -> float | None:
    return None if value is None else float(value)


def _floats(struct: dict) -> dict[str, float | None]:
    return {k: _float(v) for k, v in struct.items()}


if set(_NUMERIC_SQL) != set(NUMERIC_DRIFT):
    raise RuntimeError("every numeric drift field in the contract needs its SQL here")
