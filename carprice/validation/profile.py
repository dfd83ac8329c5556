"""Profiles of landed listings, computed in DuckDB: what a batch (or the reference) looks like.

A profile is a plain JSON-able dict: row counts, null and out-of-range rates, duplicate and repost
rates, quantiles of numeric fields, shares of categories, the schema.org fields pages carried and
their types, the additionalProperty keys they carried, and the spider's reject rate. Checks compare
a batch's profile with the reference's.
"""

from __future__ import annotations

import json

import duckdb

from carprice.money.rates import Money
from carprice.money.store import priced_sql, store_rates
from carprice.validation.contract import (
    CATEGORICAL_DRIFT,
    IMPOSSIBLE,
    NULL_TRACKED,
    NUMERIC_DRIFT,
    RANGES,
    RENAMED_PROFILE_KEYS,
    Range,
)

QUANTILES = [round(0.01 * i, 2) for i in range(1, 100)]
_NUMERIC_SQL = {
    "log_market_price": "ln(CASE WHEN market_price > 0 THEN market_price END)",
    "mileage_km": "mileage_km",
    "model_year": "model_year",
    "power_kw": "power_kw",
}
_PATH = r"regexp_replace(url, '^[a-zA-Z][a-zA-Z0-9+.-]*://[^/]+', '')"
_AGE = "greatest(year(try_cast(listed_at AS DATE)) - model_year + 0.5, 0.5)"


def _family(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return "text" if isinstance(value, str) else "nested"


def landed_columns(data: bytes, sample_lines: int = 1000) -> dict[str, str]:
    """Columns of a landed listings file (its bytes) as its first JSON lines show them (name -> type family).

    The spider writes one dataclass per line, so a sample tells the file's schema. Lines that are not JSON
    objects are skipped here (ingest made each a reject); a column with values of two families is text, as a
    JSON reader would type it.
    """
    columns: dict[str, str] = {}
    for line in data.split(b"\n")[:sample_lines]:
        try:
            record = json.loads(line)
        except (ValueError, RecursionError):
            continue
        if not isinstance(record, dict):
            continue
        for name, value in record.items():
            seen, family = columns.get(name, "null"), _family(value)
            columns[name] = family if seen in ("null", family) else seen if family == "null" else "text"
    return columns


def profile_rows(con: duckdb.DuckDBPyConnection, batch_ids: list[str], money: Money | None = None) -> dict:
    """The profile of every listing and reject in ``batch_ids``, prices in ``money``'s market currency.

    ``money``'s rates are stored in the warehouse first (default: the euro and the shipped rates).
    """
    money = money or Money.default()
    store_rates(con, money)
    # A view, not a copy: each query reads only its columns, and only the row groups of these batches.
    ids = ", ".join("'" + b.replace("'", "''") + "'" for b in batch_ids) or "NULL"
    con.execute("CREATE OR REPLACE TEMP VIEW _rows AS "
                + priced_sql(f"(SELECT * FROM raw_listings WHERE batch_id IN ({ids}))", money.currency))
    try:
        return _profile(con, batch_ids, {"market_price": Range(*money.price_range), **RANGES})
    finally:
        con.execute("DROP VIEW IF EXISTS _rows")


def _profile(con: duckdb.DuckDBPyConnection, batch_ids: list[str], ranges_by_field: dict[str, Range]) -> dict:
    nulls = ", ".join(f"{f} := avg(({f} IS NULL)::DOUBLE)" for f in NULL_TRACKED)
    ranges = ", ".join(f"{f} := avg(({f} < {r.low} OR {f} > {r.high})::DOUBLE)" for f, r in ranges_by_field.items())
    impossible = ", ".join(f"{f} := coalesce(avg(({sql})::DOUBLE), 0)" for f, sql in IMPOSSIBLE.items())
    quantiles = ", ".join(f"{name} := quantile_cont({sql}, {QUANTILES})" for name, sql in _NUMERIC_SQL.items())
    row = con.execute(f"""
        SELECT count(*) AS n,
               struct_pack({nulls}) AS null_rate,
               struct_pack({ranges}) AS out_of_range_rate,
               struct_pack({impossible}) AS impossible_rate,
               struct_pack({quantiles}) AS quantiles,
               1 - count(DISTINCT coalesce(site_listing_id, {_PATH})) / greatest(count(*), 1) AS duplicate_rate,
               median(market_price) FILTER (WHERE market_price > 0) AS median_market_price,
               median(mileage_km / {_AGE}) FILTER (WHERE mileage_km > 0) AS median_km_per_year
        FROM _rows""").fetchone()
    n, null_rate, out_of_range, impossible, quantiles_row, duplicate_rate, median_price, median_kmy = row
    repost = con.execute("""
        SELECT CASE WHEN count(fp) = 0 THEN 0 ELSE 1 - count(DISTINCT fp) / count(fp) END FROM (
            SELECT concat_ws('|', lower(make), lower(model), model_year, mileage_km, fuel, color, region,
                             seller_type) AS fp
            FROM _rows WHERE mileage_km IS NOT NULL AND model_year IS NOT NULL)""").fetchone()[0]
    # Listings whose currency has no rate on their date: kept, but they cannot be priced in the market currency.
    unrated = {currency: count / n for currency, count in con.execute(
        "SELECT regexp_extract(price_problem, 'no exchange rate: (\\S+)', 1), count(*) FROM _rows "
        "WHERE price_problem LIKE 'no exchange rate%' GROUP BY 1 ORDER BY 2 DESC").fetchall()} if n else {}
    categories = {}
    for field in CATEGORICAL_DRIFT:
        rows = con.execute(f"SELECT coalesce(lower({field}), '<null>') AS v, count(*) FROM _rows GROUP BY v").fetchall()
        categories[field] = {value: count / n for value, count in rows} if n else {}
    # Pages of one site share a few templates: count each distinct schema once, then expand it.
    source_fields: dict[str, dict] = {}
    for schema, count in con.execute("SELECT source_fields, count(*) FROM _rows WHERE source_fields IS NOT NULL "
                                     "GROUP BY 1").fetchall():
        for key, type_ in json.loads(schema).items():
            entry = source_fields.setdefault(key, {"share": 0.0, "types": {}})
            entry["share"] += count / n
            entry["types"][type_] = entry["types"].get(type_, 0) + count
    for entry in source_fields.values():
        total = sum(entry["types"].values())
        entry["types"] = {t: c / total for t, c in entry["types"].items()}
    # The additionalProperty keys pages carry, each with the share of listings that have it.
    properties = {key: count / n for key, count in con.execute(
        "SELECT key, count(*) FROM (SELECT unnest(json_keys(properties)) AS key FROM _rows "
        "WHERE json_valid(properties) AND json_type(properties) = 'OBJECT') GROUP BY key").fetchall()}
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
        "impossible_rate": _floats(impossible),
        "duplicate_rate": float(duplicate_rate or 0.0),
        "repost_rate": float(repost or 0.0),
        "median_market_price": _float(median_price),
        "unrated_currencies": unrated,
        "median_km_per_year": _float(median_kmy),
        "quantiles": {name: list(values) if values else None for name, values in quantiles_row.items()},
        "categories": categories,
        "source_fields": source_fields,
        "properties": properties,
    }


def merge_profiles(profiles: list[dict]) -> dict:
    """One reference profile from several batches' profiles, each weighted by its row count.

    Rates and shares are pooled exactly; quantiles and medians are averaged, which gives the
    quantile-average (Wasserstein barycentre) of the batches' distributions.
    """
    profiles = [upgrade_profile(p) for p in profiles if p["n"] > 0]
    if not profiles:
        raise ValueError("cannot build a reference from empty batches")
    n = sum(p["n"] for p in profiles)
    weight = [p["n"] / n for p in profiles]
    n_rejects = sum(p["n_rejects"] for p in profiles)

    def pooled(key: str) -> dict:
        # .get: references stored by an earlier version lack the newer rates.
        names = {k for p in profiles for k in p.get(key, {})}
        return {k: _weighted([p.get(key, {}).get(k) for p in profiles], weight) for k in sorted(names)}

    def shares(maps: list[dict]) -> dict:
        keys = {k for m in maps for k in m}
        return {k: sum(w * m.get(k, 0.0) for m, w in zip(maps, weight)) for k in keys}

    source_fields = {}
    for key in {k for p in profiles for k in p["source_fields"]}:
        entries = [p["source_fields"].get(key, {"share": 0.0, "types": {}}) for p in profiles]
        source_fields[key] = {"share": sum(w * e["share"] for e, w in zip(entries, weight)),
                              "types": _normalized(shares([{t: s * e["share"] for t, s in e["types"].items()}
                                                           for e in entries]))}
    # Profiles stored by an earlier version did not look at properties: pool only those that did.
    with_properties = [p for p in profiles if "properties" in p]
    properties = {}
    if with_properties:
        n_with = sum(p["n"] for p in with_properties)
        for key in {k for p in with_properties for k in p["properties"]}:
            properties[key] = sum(p["n"] * p["properties"].get(key, 0.0) for p in with_properties) / n_with
    reasons: dict[str, int] = {}
    for p in profiles:
        for reason, count in p["reject_reasons"].items():
            reasons[reason] = reasons.get(reason, 0) + count
    quantiles = {}
    for name in {k for p in profiles for k in p["quantiles"]}:
        rows = [(p["quantiles"].get(name), w) for p, w in zip(profiles, weight) if p["quantiles"].get(name)]
        total = sum(w for _, w in rows)
        quantiles[name] = [sum(q[i] * w for q, w in rows) / total for i in range(len(rows[0][0]))] if rows else None
    return {
        "batch_ids": [b for p in profiles for b in p["batch_ids"]],
        "n": n,
        "n_rejects": n_rejects,
        "reject_rate": n_rejects / (n + n_rejects),
        "reject_reasons": dict(sorted(reasons.items(), key=lambda kv: -kv[1])),
        "null_rate": pooled("null_rate"),
        "out_of_range_rate": pooled("out_of_range_rate"),
        "impossible_rate": pooled("impossible_rate"),
        "duplicate_rate": _weighted([p["duplicate_rate"] for p in profiles], weight),
        "repost_rate": _weighted([p["repost_rate"] for p in profiles], weight),
        "median_market_price": _weighted([p["median_market_price"] for p in profiles], weight),
        "unrated_currencies": shares([p.get("unrated_currencies", {}) for p in profiles]),
        "median_km_per_year": _weighted([p["median_km_per_year"] for p in profiles], weight),
        "quantiles": quantiles,
        "categories": {f: shares([p["categories"].get(f, {}) for p in profiles])
                       for f in {f for p in profiles for f in p["categories"]}},
        "source_fields": source_fields,
        **({"properties": properties} if with_properties else {}),
    }


def upgrade_profile(profile: dict) -> dict:
    """A profile stored by an earlier version with today's key names (its prices were in euros, the only market
    currency then)."""
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in profile.items()}
    for old, new in RENAMED_PROFILE_KEYS.items():
        parent_old = out if len(old) == 1 else out.get(old[0])
        parent_new = out if len(new) == 1 else out.get(new[0])
        if isinstance(parent_old, dict) and isinstance(parent_new, dict) and old[-1] in parent_old:
            parent_new.setdefault(new[-1], parent_old.pop(old[-1]))
    return out


def _weighted(values: list[float | None], weights: list[float]) -> float | None:
    pairs = [(v, w) for v, w in zip(values, weights) if v is not None]
    total = sum(w for _, w in pairs)
    return sum(v * w for v, w in pairs) / total if total else None


def _normalized(shares: dict[str, float]) -> dict[str, float]:
    total = sum(shares.values())
    return {k: v / total for k, v in shares.items()} if total else {}


def _float(value) -> float | None:
    return None if value is None else float(value)


def _floats(struct: dict) -> dict[str, float | None]:
    return {k: _float(v) for k, v in struct.items()}


if set(_NUMERIC_SQL) != set(NUMERIC_DRIFT):
    raise RuntimeError("every numeric drift field in the contract needs its SQL here")
