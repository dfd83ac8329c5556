"""The warehouse side of valuation: the current listings' features, and the valuations and deals tables."""

from __future__ import annotations

import pandas as pd

from carprice.warehouse import Warehouse


def current_features(wh: Warehouse) -> pd.DataFrame:
    """Features of every listing on sale now."""
    return wh.query("SELECT f.* FROM listing_features f JOIN clean_listings c USING (url) WHERE c.is_current")


def current_descriptions(wh: Warehouse) -> pd.DataFrame:
    """What a deal is shown with: title, make, model, year, mileage, seller and region of current listings."""
    return wh.query("SELECT url, title, make, model, model_year, mileage_km, seller_type, region "
                    "FROM clean_listings WHERE is_current")


def read_valuations(wh: Warehouse) -> pd.DataFrame:
    return wh.query("SELECT * FROM listing_valuations")


def write_valuations(wh: Warehouse, valuations: pd.DataFrame) -> int:
    return wh.replace_table("listing_valuations", valuations)


def write_deals(wh: Warehouse, deals: pd.DataFrame) -> int:
    return wh.replace_table("deals", deals)
