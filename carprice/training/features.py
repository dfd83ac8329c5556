"""Model features from clean listings: structured fields, age at listing time, words in the text, and the
additionalProperty values a source publishes on most of its listings."""

from __future__ import annotations

import json

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


def build_features(clean: pd.DataFrame) -> pd.DataFrame:
    """One feature row per clean listing, plus what splits and prices it (``url``, ``listing_key``, ``car_key``,
    ``listed_at``, ``listed_at_stated``, ``first_seen_at``, ``price_eur``, ``log_price``)."""
    out = pd.DataFrame({"url": clean["url"], "listing_key": clean["listing_key"],
                        # Reposts of one car under other URLs share it, so a random split keeps them together.
                        "car_key": car_identity(clean).fillna(clean["listing_key"]),
                        "listed_at": pd.to_datetime(clean["listed_at"]),
                        "listed_at_stated": clean["listed_at_stated"].astype(bool),
                        "first_seen_at": pd.to_datetime(clean["first_seen_at"], utc=True, format="ISO8601")
                        .dt.tz_localize(None)})
    for col in CATEGORICAL:
        out[col] = clean[col].astype("string").str.strip().str.lower()
    out["model_year"] = clean["model_year"].astype("float64")
    registered = pd.to_datetime(clean["first_registration"], errors="coerce")
    registered = registered.fillna(pd.to_datetime(clean["model_year"].astype("Int64").astype("string") + "-07-01",
                                                  errors="coerce"))
    out["age_years"] = ((out["listed_at"] - registered).dt.days / 365.25).clip(lower=0.05)
    # When it was listed, as a fractional year: a recipe may let the trees tell prices before and after a change.
    # Where the source stated no date, listed_at is only the day of the latest crawl (a car unsold for months would
    # look new), so the time is when the listing was first seen.
    when = out["listed_at"].where(out["listed_at_stated"], out["first_seen_at"])
    out[TIME_FEATURE] = when.dt.year + (when.dt.dayofyear - 1) / 365.25
    out["mileage_km"] = clean["mileage_km"].astype("float64")
    out["km_per_year"] = out["mileage_km"] / out["age_years"]
    out["power_kw"] = clean["power_kw"].astype("float64")
    out["doors"] = clean["doors"].astype("float64")
    text = (clean["title"].fillna("") + " " + clean["description"].fillna("")).str.lower()
    for name, pattern in TEXT_FLAGS.items():
        out[name] = text.str.contains(pattern, regex=True).astype("int8")
    out["equipment_words"] = text.str.count(_EQUIPMENT).astype("int16")
    for column, values in property_columns(clean).items():
        out[column] = values
    out["price_eur"] = clean["price_eur"].astype("float64")
    out["log_price"] = np.log(out["price_eur"])
    return out.reset_index(drop=True)
