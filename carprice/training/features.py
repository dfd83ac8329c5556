"""Model features from clean listings: structured fields, age at listing time, words in the text."""

from __future__ import annotations

import numpy as np
import pandas as pd

from carprice.cleaning.rules import car_identity

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
_EQUIPMENT = r"navi|leather|panorama|heated seats|led headlights|towbar|adaptive cruise"


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
    out["mileage_km"] = clean["mileage_km"].astype("float64")
    out["km_per_year"] = out["mileage_km"] / out["age_years"]
    out["power_kw"] = clean["power_kw"].astype("float64")
    out["doors"] = clean["doors"].astype("float64")
    text = (clean["title"].fillna("") + " " + clean["description"].fillna("")).str.lower()
    for name, pattern in TEXT_FLAGS.items():
        out[name] = text.str.contains(pattern, regex=True).astype("int8")
    out["equipment_words"] = text.str.count(_EQUIPMENT).astype("int16")
    out["price_eur"] = clean["price_eur"].astype("float64")
    out["log_price"] = np.log(out["price_eur"])
    return out.reset_index(drop=True)
