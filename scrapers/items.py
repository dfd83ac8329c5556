"""Items the spiders yield: a listing as found on its page, or the reason a page gave none."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class CarListing:
    """One used-car offer: raw values as the page states them, then normalized ones filled by pipelines."""

    url: str
    source: str
    scraped_at: str
    page_format: str
    title: str | None = None
    description: str | None = None
    make_raw: str | None = None
    model: str | None = None
    model_year_raw: str | None = None
    first_registration_raw: str | None = None
    mileage_raw: str | None = None
    mileage_unit_raw: str | None = None
    fuel_raw: str | None = None
    transmission_raw: str | None = None
    body_raw: str | None = None
    power_raw: str | None = None
    power_unit_raw: str | None = None
    color: str | None = None
    doors_raw: str | None = None
    condition_raw: str | None = None
    price_raw: str | None = None
    currency_raw: str | None = None
    seller_type_raw: str | None = None
    seller_name: str | None = None
    region: str | None = None
    listed_at_raw: str | None = None
    site_listing_id: str | None = None
    # JSON object {"offers.price": "string", ...}: which schema.org properties the page had, and their types.
    source_fields: str | None = None
    # JSON object {"title_status": "clean", ...}: the page's additionalProperty name/value pairs (parsing.py caps them).
    properties: str | None = None
    # Filled by NormalizePipeline.
    make: str | None = None
    model_year: int | None = None
    first_registration: str | None = None
    mileage_km: float | None = None
    fuel: str | None = None
    transmission: str | None = None
    body: str | None = None
    power_kw: float | None = None
    doors: int | None = None
    condition: str | None = None
    price: float | None = None        # the amount the page states ...
    currency: str | None = None       # ... in this currency (ISO code); the platform converts it
    seller_type: str | None = None
    listed_at: str | None = None


@dataclass
class Reject:
    """A page or listing that could not be understood, kept with the reason."""

    url: str
    source: str
    scraped_at: str
    reason: str
    detail: str = ""
