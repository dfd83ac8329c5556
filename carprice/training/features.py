"""Model features from clean listings: structured fields, age at listing time, words in the text, and the
additionalProperty values a source publishes on most of its listings."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from carprice.cleaning.rules import car_identity
from scrapers import normalize

CATEGORICAL = ["make", "model", "fuel", "transmission", "body", "seller_type", "region", "condition", "color"]
NUMERIC = ["model_year", "age_years", "mileage_km", "km_per_year", "power_kw", "doors"]
# Words in titles and descriptions that move prices; each becomes a 0/1 feature.
TEXT_FLAGS = {
    "for_parts": r"for parts|spares or repair",
    "salvage": r"salvage|write-?off",
    "accident": r"accident|crash|damaged",
    "needs_work": r"needs work|project car|non-runner",
    "service_history": r"service history",
    "one_owner": r"one owner|1 owner",
    "top_trim": r"top trim|premium|sport|m sport|amg|s line|gti",
}
FEATURES = CATEGORICAL + NUMERIC + list(TEXT_FLAGS) + ["equipment_words"]
# The listing date as a number: a feature only of recipes that ask for it (``time_feature``), since trees cannot
# extrapolate it and a model without it cannot be fooled by it.
TIME_FEATURE = "listed_year"
_EQUIPMENT = r"navi|leather|panorama|heated seats|led headlights|towbar|adaptive cruise"
_TEXT_PATTERNS = {name: re.compile(pattern) for name, pattern in TEXT_FLAGS.items()}
# Most texts carry none of the flags: one search for any of them spares those the search for each.
_ANY_FLAG = re.compile("|".join(f"(?:{pattern})" for pattern in TEXT_FLAGS.values()))
_EQUIPMENT_PATTERN = re.compile(_EQUIPMENT)

# Properties whose vocabulary is known: feature column -> (property keys sites use for it, normalizer).
KNOWN_PROPERTIES = {
    "title_status": (("title_status", "title", "title_brand"), normalize.title_status),
    "drive": (("drive", "drivetrain", "drive_train", "drive_type"), normalize.drive),
    "cylinders": (("cylinders", "cylinder_count", "number_of_cylinders"), normalize.cylinders),
}
PROPERTY_NUMERIC = ["cylinders"]
# Other properties become categorical columns named with this prefix.
PROPERTY_PREFIX = "prop_"
# Keys already read into a listing field (condition fills condition_raw), so not features twice.
_READ_ELSEWHERE = {"condition"}
# A property is a feature when some source publishes it on at least this share of its listings ...
PROPERTY_MIN_SHARE = 0.5
# ... and, for the unknown ones, only the most common few with few distinct values (a VIN or a stock number
# is not a category).
MAX_OTHER_PROPERTIES = 5
MAX_PROPERTY_LEVELS = 50


def is_property_feature(column: str) -> bool:
    """True for a feature column made from additionalProperty values (absent from frames of sites without them)."""
    return column in KNOWN_PROPERTIES or column.startswith(PROPERTY_PREFIX)


def model_features(features: pd.DataFrame) -> list[str]:
    """The columns a model trained on ``features`` uses: the fixed features, then the property columns it holds."""
    return FEATURES + [c for c in features.columns if is_property_feature(c)]


def _property_maps(clean: pd.DataFrame) -> pd.Series:
    """Each listing's properties as a dict (empty when it has none or its text is not a JSON object)."""
    if "properties" not in clean:
        return pd.Series([{}] * len(clean), index=clean.index, dtype="object")

    def parse(text: object) -> dict:
        try:
            value = json.loads(text) if isinstance(text, str) else {}
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}

    return clean["properties"].map(parse)


def property_columns(clean: pd.DataFrame) -> dict[str, pd.Series]:
    """Feature columns from the properties some source publishes on most of its listings: known ones normalized
    (``title_status``, ``drive``, ``cylinders``), a few others as lower-cased categories (``prop_<key>``)."""
    maps = _property_maps(clean)
    source = clean["source"] if "source" in clean else pd.Series("", index=clean.index)
    keys = pd.DataFrame([dict.fromkeys(m, True) for m in maps], index=clean.index)
    if keys.empty:
        return {}
    common = keys.notna().groupby(source.values).mean().max()  # each key's share on the source using it most
    common = common[common >= PROPERTY_MIN_SHARE].sort_values(ascending=False, kind="stable")
    out: dict[str, pd.Series] = {}
    known_keys = {k for aliases, _ in KNOWN_PROPERTIES.values() for k in aliases}
    for column, (aliases, norm) in KNOWN_PROPERTIES.items():
        if any(a in common.index for a in aliases):
            raw = maps.map(lambda m, aliases=aliases: next((m[a] for a in aliases if a in m), None))
            values = raw.map(norm)
            out[column] = values.astype("float64") if column in PROPERTY_NUMERIC else values.astype("string")
    others = [k for k in common.index if k not in known_keys and k not in _READ_ELSEWHERE]
    for key in others:
        if sum(c.startswith(PROPERTY_PREFIX) for c in out) >= MAX_OTHER_PROPERTIES:
            break
        values = maps.map(lambda m, key=key: m.get(key)).astype("string").str.strip().str.lower()
        if values.nunique() <= MAX_PROPERTY_LEVELS:
            out[PROPERTY_PREFIX + key] = values
    return out


def as_floats(values: Any) -> np.ndarray:
    """A column as float64 (missing as NaN), from a pandas column of any dtype or a list with Nones."""
    if isinstance(values, pd.Series | pd.Index):
        return values.to_numpy(dtype="float64", na_value=np.nan)
    return np.asarray(values, dtype="float64")


def _texts(values: Any) -> list[str | None]:
    """A column's values as str, missing as None (pandas' ``astype("string")`` without its per-call cost)."""
    return [v if isinstance(v, str) else None if v is None or pd.isna(v) else str(v) for v in values]


def as_objects(values: Any) -> np.ndarray:
    """A category column as an object array (str, missing as None or NA), for hashing against known levels."""
    return values if isinstance(values, np.ndarray) and values.dtype == object else np.asarray(values, dtype=object)


class Levels:
    """A category column's known levels, coding values by their position (-1: unseen or missing)."""

    # Up to this many values a dict lookup per value beats hashing them all into an index (a request's few cars).
    SMALL = 64

    def __init__(self, levels: list[str]):
        self.positions = {level: i for i, level in enumerate(levels)}
        self.index = pd.Index(levels, dtype=object)

    def codes(self, values: Any) -> np.ndarray:
        if len(values) <= self.SMALL:
            return np.fromiter((self.positions.get(v, -1) if isinstance(v, str) else -1 for v in values),
                               dtype=np.intp, count=len(values))
        return self.index.get_indexer(as_objects(values))


def _category(values: Any) -> np.ndarray:
    """Category values as the models know them: trimmed, lower-cased str (missing as None)."""
    return np.array([v.strip().lower() if v is not None else None for v in _texts(values)], dtype=object)


def _days(values: Any) -> np.ndarray:
    """Dates (ISO text, dates, timestamps; missing or unparseable as NaT) as datetime64[ns]."""
    return pd.to_datetime(pd.Series(values, dtype="object") if isinstance(values, list) else values,
                          errors="coerce").to_numpy(dtype="datetime64[ns]")


def feature_columns(clean: Mapping[str, Any], listed_at: np.ndarray, when: np.ndarray) -> dict[str, np.ndarray]:
    """The model features of listings, column by column: the one place they are computed, for a million listings in
    training or the one car a price request describes (plain numpy, no DataFrame, so a single row costs little).

    ``clean`` maps clean-listing columns (CATEGORICAL, model_year, first_registration, mileage_km, power_kw,
    doors, title, description) to equal-length columns (pandas or lists); ``listed_at`` is the day each is priced
    on and ``when`` the time it was listed (both datetime64). The additionalProperty columns are not here: which
    properties are features depends on the whole data set (``property_columns``).
    """
    out: dict[str, np.ndarray] = {col: _category(clean[col]) for col in CATEGORICAL}
    model_year = as_floats(clean["model_year"])
    out["model_year"] = model_year
    registered = _days(clean["first_registration"])
    # Without a registration date, a car counts as registered on July 1st of its model year.
    # (only years a nanosecond timestamp holds: any other is as unknown as the old text parsing made it)
    missing = np.isnat(registered) & (model_year >= 1678) & (model_year <= 2261)
    if missing.any():
        years = (model_year[missing].astype("int64") - 1970).astype("datetime64[Y]")
        registered[missing] = (years.astype("datetime64[M]") + np.timedelta64(6, "M")).astype("datetime64[ns]")
    days = np.floor((listed_at.astype("datetime64[ns]") - registered) / np.timedelta64(1, "D"))
    out["age_years"] = np.clip(days / 365.25, 0.05, None)
    # When it was listed, as a fractional year: a recipe may let the trees tell prices before and after a change.
    stamps = pd.DatetimeIndex(when)
    out[TIME_FEATURE] = (stamps.year + (stamps.dayofyear - 1) / 365.25).to_numpy(dtype="float64")
    out["mileage_km"] = as_floats(clean["mileage_km"])
    out["km_per_year"] = out["mileage_km"] / out["age_years"]
    out["power_kw"] = as_floats(clean["power_kw"])
    out["doors"] = as_floats(clean["doors"])
    text = [f"{t or ''} {d or ''}".lower() for t, d in zip(_texts(clean["title"]), _texts(clean["description"]))]
    where = np.fromiter((_ANY_FLAG.search(t) is not None for t in text), dtype=bool, count=len(text))
    flagged = [t for t, w in zip(text, where) if w]
    for name, pattern in _TEXT_PATTERNS.items():
        out[name] = np.zeros(len(text), dtype="int8")
        out[name][where] = np.fromiter((pattern.search(t) is not None for t in flagged), dtype="int8",
                                       count=len(flagged))
    out["equipment_words"] = np.fromiter((len(_EQUIPMENT_PATTERN.findall(t)) for t in text), dtype="int16",
                                         count=len(text))
    return out


def build_features(clean: pd.DataFrame) -> pd.DataFrame:
    """One feature row per clean listing, plus what splits and prices it (``url``, ``listing_key``, ``car_key``,
    ``listed_at``, ``listed_at_stated``, ``first_seen_at``, ``market_price``, ``log_price``)."""
    listed_at = pd.to_datetime(clean["listed_at"])
    stated = clean["listed_at_stated"].astype(bool)
    first_seen = pd.to_datetime(clean["first_seen_at"], utc=True, format="ISO8601").dt.tz_localize(None)
    # Where the source stated no date, listed_at is only the day of the latest crawl (a car unsold for months would
    # look new), so the time it was listed is when it was first seen.
    when = listed_at.where(stated, first_seen)
    columns = feature_columns(clean, listed_at.to_numpy(dtype="datetime64[ns]"), when.to_numpy(dtype="datetime64[ns]"))
    out = pd.DataFrame({"url": clean["url"].to_numpy(), "listing_key": clean["listing_key"].to_numpy(),
                        # Reposts of one car under other URLs share it, so a random split keeps them together.
                        "car_key": car_identity(clean).fillna(clean["listing_key"]).to_numpy(),
                        "listed_at": listed_at.to_numpy(), "listed_at_stated": stated.to_numpy(),
                        "first_seen_at": first_seen.to_numpy(),
                        **{c: pd.array(v, dtype="string") if c in CATEGORICAL else v for c, v in columns.items()}})
    for column, values in property_columns(clean).items():
        out[column] = values.to_numpy() if column in PROPERTY_NUMERIC else pd.array(values.to_numpy(), dtype="string")
    out["market_price"] = clean["market_price"].astype("float64").to_numpy()
    out["log_price"] = np.log(out["market_price"])
    return out
