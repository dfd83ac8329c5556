"""Turn raw observations into one clean row per listing; every excluded row keeps its reason.

Pure functions of DataFrames; they import nothing from Dagster or DuckDB.
"""

from __future__ import annotations

import pandas as pd

from carprice.money.rates import BASE, PLAUSIBLE_PRICE_EUR

# Prices are in the installation's market currency (clean_observations is given it and its plausible range).
MAX_MILEAGE_KM = 1_000_000.0
MAX_POWER_KW = 1_200.0
MIN_MODEL_YEAR = 1950
# A price this many times above or below the median of its make/model/year is a typo, not a deal.
PRICE_RATIO_LIMIT = 6.0
MIN_GROUP_FOR_RATIO = 5

CLEAN_COLUMNS = [
    "listing_key", "url", "source", "batch_id", "first_seen_at", "last_seen_at", "is_current", "title", "description",
    "make", "model", "model_year", "first_registration", "mileage_km", "fuel", "transmission", "body",
    "power_kw", "color", "doors", "condition", "market_price", "price", "currency", "seller_type", "region",
    "listed_at", "listed_at_stated", "properties", "repost_of",
]


ORIGIN_PATTERN = r"^[a-z][a-z0-9+.-]*://[^/]+"  # scheme and host:port, dropped from a listing's identity


def listing_key(source: pd.Series, url: pd.Series) -> pd.Series:
    """A listing's identity: its source and URL path (hosts and ports may change between crawls)."""
    path = url.str.replace(ORIGIN_PATTERN, "", regex=True, case=False)
    return source + ":" + path


# The same identity in DuckDB SQL, for queries over raw_listings.


def latest_observations(raw: pd.DataFrame) -> pd.DataFrame:
    """One row per listing: its newest observation, with when it was first and last seen."""
    raw = raw.assign(listing_key=listing_key(raw["source"], raw["url"])).sort_values(["scraped_at", "batch_id"])
    # Sorted by time, a listing's first row is when it was first seen and its last row is its newest
    # observation (min/max on these strings would fall back to slow Python aggregation).
    first = raw.drop_duplicates("listing_key", keep="first").set_index("listing_key")["scraped_at"]
    latest = raw.drop_duplicates("listing_key", keep="last").set_index("listing_key")
    return latest.assign(first_seen_at=first, last_seen_at=latest["scraped_at"]).reset_index()


def mark_current(listings: pd.DataFrame, latest_batch_by_source: dict[str, str]) -> pd.Series:
    """True for listings present in their source's newest batch (still on sale when last crawled)."""
    latest = listings["source"].map(latest_batch_by_source)
    return listings["batch_id"].eq(latest)


def exclusion_reasons(df: pd.DataFrame, today: pd.Timestamp, currency: str = BASE,
                      price_range: tuple[float, float] = PLAUSIBLE_PRICE_EUR) -> pd.Series:
    """Why each row cannot be used for pricing (None when it can): no price in the market currency (no exchange
    rate on its date), missing keys, impossible values. ``price_range`` is the plausible range in ``currency``."""
    reasons = pd.Series(None, index=df.index, dtype="object")

    def flag(mask: pd.Series, reason: str | pd.Series) -> None:
        mask = mask.fillna(False) & reasons.isna()
        reasons[mask] = reason if isinstance(reason, str) else reason[mask]

    price = df["market_price"]
    if "price_problem" in df:
        flag(df["price_problem"].notna(), df["price_problem"])
    flag(price.isna(), "price missing or unreadable")
    flag(price < price_range[0], "price below " + f"{price_range[0]:.0f} {currency}")
    flag(price > price_range[1], "price above " + f"{price_range[1]:.0f} {currency}")
    flag(df["model_year"].isna(), "model year missing")
    flag(df["model_year"] > today.year + 1, "model year in the future")
    flag(df["model_year"] < MIN_MODEL_YEAR, f"model year before {MIN_MODEL_YEAR}")
    flag(df["mileage_km"] < 0, "negative mileage")
    flag(df["mileage_km"] > MAX_MILEAGE_KM, f"mileage above {MAX_MILEAGE_KM:,.0f} km")
    flag(df["power_kw"] > MAX_POWER_KW, f"power above {MAX_POWER_KW:,.0f} kW")
    ratio = price_to_group_median(df)
    text = ratio.map(lambda r: None if pd.isna(r) else f"implausible price: {r:.2f}x the median of its make/model/year")
    flag((ratio > PRICE_RATIO_LIMIT) | (ratio < 1 / PRICE_RATIO_LIMIT), text)
    return reasons.astype("object").where(reasons.notna(), None)


def price_to_group_median(df: pd.DataFrame) -> pd.Series:
    """Each price over the median of its peers: same make, model and year, else same make and model, else
    same make, using the finest group with at least MIN_GROUP_FOR_RATIO listings (NaN when none has)."""
    make, model = df["make"].str.lower(), df["model"].str.lower()
    ratio = pd.Series(float("nan"), index=df.index)
    for keys in ([make, model, df["model_year"]], [make, model], [make]):
        grouped = df["market_price"].groupby(keys, dropna=False)
        size = grouped.transform("size")
        level = (df["market_price"] / grouped.transform("median")).where(size >= MIN_GROUP_FOR_RATIO)
        ratio = ratio.fillna(level)
    return ratio


def car_identity(df: pd.DataFrame) -> pd.Series:
    """The car a listing offers, as repost detection knows it (None when too little is known to tell).

    The same car is the same make, model, year, mileage, fuel, colour, region and seller type.
    """
    key_cols = ["make", "model", "model_year", "mileage_km", "fuel", "color", "region", "seller_type"]
    keyed = df[key_cols].astype("string").fillna("?")
    key = keyed[key_cols[0]].str.cat([keyed[c] for c in key_cols[1:]], sep="|")
    # Too little information to call two posts the same car: never dedupe on a mostly empty key.
    weak = df["mileage_km"].isna() | df["model_year"].isna()
    return key.astype("object").where(~weak, None)


def repost_of(df: pd.DataFrame) -> pd.Series:
    """For a listing that re-posts the same car under a new URL, the URL kept instead (else None).

    The newest post of a car (``car_identity``) is kept, since it carries the current price.
    """
    key = car_identity(df)
    order = df.sort_values(["listed_at", "last_seen_at", "url"]).index
    keep_url = pd.Series(df["url"].values, index=df.index).loc[order].groupby(key.loc[order]).transform("last")
    keep_url = keep_url.reindex(df.index)
    dup = keep_url.ne(df["url"]) & key.notna()
    return keep_url.where(dup, None)


def clean_observations(raw: pd.DataFrame, latest_batch_by_source: dict[str, str], today: pd.Timestamp,
                       currency: str = BASE, price_range: tuple[float, float] = PLAUSIBLE_PRICE_EUR,
                       ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Clean listings and excluded listings (with ``reason``) from all raw observations.

    ``raw`` carries ``market_price`` (in ``currency``) and ``price_problem`` (carprice.money.store.priced_sql).
    """
    if raw.empty:
        empty = pd.DataFrame(columns=CLEAN_COLUMNS)
        return empty, empty.assign(reason=pd.Series(dtype="object"))
    if "properties" not in raw:  # observations from before listings carried their additionalProperty map
        raw = raw.assign(properties=None)
    latest = latest_observations(raw)
    latest["is_current"] = mark_current(latest, latest_batch_by_source)
    latest["listed_at"] = pd.to_datetime(latest["listed_at"], errors="coerce")
    # Without a stated date a listing carries the day it was crawled: training must not take that for a listing date.
    latest["listed_at_stated"] = latest["listed_at_raw"].notna() & latest["listed_at"].notna()
    problems = latest["price_problem"].reset_index(drop=True) if "price_problem" in latest else None
    latest = latest[[c for c in CLEAN_COLUMNS if c != "repost_of"]].reset_index(drop=True)
    reasons = exclusion_reasons(latest.assign(price_problem=problems), today, currency, price_range)
    # A repost is the same car under another URL: it stays a listing (valued, shown as a deal under its own
    # URL) and names the post kept for training, so each car is one training row, the newest.
    latest["repost_of"] = repost_of(latest.loc[reasons.isna()]).reindex(latest.index)
    excluded = latest.loc[reasons.notna()].drop(columns="repost_of").assign(reason=reasons[reasons.notna()])
    clean = latest.loc[reasons.isna()].reset_index(drop=True)
    clean["mileage_km"] = clean["mileage_km"].astype("float64")
    clean["model_year"] = clean["model_year"].astype("int64")
    return clean, excluded.reset_index(drop=True)


def reason_counts(excluded: pd.DataFrame) -> dict[str, int]:
    """Excluded rows per reason family (the text before any colon), most common first."""
    if excluded.empty:
        return {}
    counts = excluded["reason"].str.split(":").str[0].value_counts()
    return {str(k): int(v) for k, v in counts.items()}
