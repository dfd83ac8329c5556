"""HTML pages of the simulated marketplace, written the way real listing sites write them.

Detail pages embed schema.org ``Car`` data as JSON-LD (most) or microdata (some),
with the inconsistencies real sellers produce: make spellings, miles or
kilometres, prices as text, missing fields.  A market configured with faults
(``carprice.market.faults``) renders its pages with them.
"""

from __future__ import annotations

import html
import json
import math
from typing import Any

from carprice.market.faults import DUPLICATE_FLOOD, apply_data_faults, apply_page_faults, stated_price
from carprice.market.generator import Listing, Market

SITE_NAME = "AutoMarkt"

ROBOTS_TXT = """User-agent: *
Disallow: /contact/
Disallow: /account/
Allow: /

Sitemap: /sitemap.xml
"""

_FUEL_LABEL = {"petrol": "Petrol", "diesel": "Diesel", "hybrid": "Hybrid", "electric": "Electric", "lpg": "LPG"}
_CONDITION_URL = {"excellent": "https://schema.org/UsedCondition", "good": "https://schema.org/UsedCondition",
                  "fair": "https://schema.org/UsedCondition", "poor": "https://schema.org/DamagedCondition"}


def _page(title: str, head_extra: str, body: str) -> str:
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{html.escape(title)} | {SITE_NAME}</title>{head_extra}</head>"
        f"<body><header><a href=\"/\">{SITE_NAME}</a> <a href=\"/account/login\">Sign in</a></header>"
        f"<main>{body}</main><footer>&copy; {SITE_NAME}</footer></body></html>\n"
    )


def title_of(listing: Listing) -> str:
    car = listing.car
    words = [listing.make_spelling, car.spec.model]
    words += list(car.trim_words[:2])
    if car.damage_word:
        words.append(f"- {car.damage_word}")
    if listing.repost_of is not None:
        words.append("(reduced)" if listing.id % 2 else "")
    return " ".join(w for w in words if w)


def description_of(listing: Listing) -> str:
    car = listing.car
    parts = [f"{car.spec.model} from {car.model_year} in {car.color}."]
    if car.trim_words:
        parts.append("Equipment: " + ", ".join(car.trim_words) + ".")
    if car.damage_word:
        parts.append(f"Sold as seen, {car.damage_word}.")
    parts.append("Dealer warranty available." if listing.seller_type == "dealer" else "Private sale, no warranty.")
    return " ".join(parts)


_PRICE_WITH_SYMBOL = {
    "EUR": lambda amount: "€ " + f"{amount:,}".replace(",", "."),
    "GBP": lambda amount: f"£{amount:,}",
    "PLN": lambda amount: f"{amount:,} zł".replace(",", " "),
    "CHF": lambda amount: "CHF " + f"{amount:,}".replace(",", "'"),
}


def price_text(listing: Listing, day: int, faults: frozenset[str] = frozenset()) -> str:
    """The asking price as a string, in one of the styles sellers use."""
    amount, currency = stated_price(listing, day, faults)
    styles = (
        _PRICE_WITH_SYMBOL[currency](amount),
        f"{amount} {currency}",
        f"{currency} {amount:,}",
        f"{amount:,}.00",
        str(amount),
    )
    return styles[listing.price_style]


def _mileage_value(listing: Listing) -> tuple[float, str]:
    km = listing.car.mileage_km
    if listing.mileage_unit == "mi":
        return round(km / 1.609344), "SMI"
    return km, "KMT"


def car_data(market: Market, listing: Listing, day: int) -> dict:
    """The schema.org ``Car`` entity of a listing, with the seller's omissions and the market's faults."""
    faults = market.config.faults
    car = listing.car
    missing = listing.missing
    mileage, unit = _mileage_value(listing)
    data: dict = {
        "@context": "https://schema.org",
        "@type": "Car",
        "name": title_of(listing),
        "description": description_of(listing),
        "url": listing.path,
        "sku": str(listing.id),
        "model": car.spec.model,
        "itemCondition": _CONDITION_URL[car.condition],
    }
    if "make" not in missing:
        data["brand"] = {"@type": "Brand", "name": listing.make_spelling}
    if "model_year" not in missing:
        data["vehicleModelDate"] = str(car.model_year)
    if "first_registration" not in missing:
        reg = car.first_registration
        data["dateVehicleFirstRegistered"] = reg.isoformat() if listing.id % 3 else f"{reg.month:02d}/{reg.year}"
    if "mileage" not in missing:
        value = mileage if listing.id % 7 else f"{mileage:,} {'miles' if unit == 'SMI' else 'km'}"
        data["mileageFromOdometer"] = {"@type": "QuantitativeValue", "value": value, "unitCode": unit}
    if "fuel" not in missing:
        data["fuelType"] = _FUEL_LABEL[car.fuel]
    if "transmission" not in missing:
        data["vehicleTransmission"] = car.transmission.capitalize() if listing.id % 5 else car.transmission.upper()
    if "body" not in missing:
        data["bodyType"] = car.spec.body
    if "power" not in missing:
        if listing.id % 4 == 0:
            power = {"@type": "QuantitativeValue", "value": round(car.power_kw / 0.7457), "unitCode": "BHP"}
        else:
            power = {"@type": "QuantitativeValue", "value": car.power_kw, "unitCode": "KWT"}
        data["vehicleEngine"] = {"@type": "EngineSpecification", "enginePower": power}
    if "color" not in missing:
        data["color"] = car.color
    if "doors" not in missing:
        data["numberOfDoors"] = car.doors
    if "condition" not in missing:
        data["additionalProperty"] = [{"@type": "PropertyValue", "name": "condition", "value": car.condition}]
    price: int | str
    price, currency = stated_price(listing, day, faults)
    if listing.price_style:
        price = price_text(listing, day, faults)
    seller_type = "AutoDealer" if listing.seller_type == "dealer" else "Person"
    data["offers"] = {
        "@type": "Offer",
        "price": price,
        "priceCurrency": currency,
        "availability": "https://schema.org/InStock",
        "validFrom": market.date_of(listing.listed_day).isoformat(),
        "seller": {"@type": seller_type, "name": listing.seller_name},
        "availableAtOrFrom": {"@type": "Place", "address": {"@type": "PostalAddress", "addressRegion": listing.region}},
    }
    return apply_data_faults(data, listing, faults, market.config.seed)


def _microdata(value, prop: str | None = None) -> str:
    """Render a JSON-LD-like dict as nested schema.org microdata."""
    if isinstance(value, dict):
        itemprop = f' itemprop="{prop}"' if prop else ""
        inner = "".join(_microdata(v, k) for k, v in value.items() if not k.startswith("@"))
        return f'<div{itemprop} itemscope itemtype="https://schema.org/{value.get("@type", "Thing")}">{inner}</div>'
    if isinstance(value, list):
        return "".join(_microdata(v, prop) for v in value)
    if prop in ("url",):
        return f'<link itemprop="{prop}" href="{html.escape(str(value))}">'
    if prop in ("itemCondition", "availability", "priceCurrency", "unitCode", "validFrom", "sku"):
        return f'<meta itemprop="{prop}" content="{html.escape(str(value))}">'
    return f'<span itemprop="{prop}">{html.escape(str(value))}</span>'


def detail_page(market: Market, listing: Listing, day: int, public_url: str | None = None) -> bytes:
    """A listing's own page as served: visible text plus the structured data crawlers read; with ``public_url``,
    the page names its canonical URL at that address."""
    canonical = f'<link rel="canonical" href="{html.escape(public_url.rstrip("/") + listing.path)}">' \
        if public_url else ""
    page = render_detail(market, listing, day, car_data(market, listing, day), listing.page_format, canonical)
    return apply_page_faults(page.encode("utf-8"), listing, market.config.faults, market.config.seed)


def render_detail(market: Market, listing: Listing, day: int, data: Any, page_format: str | None,
                  head: str = "") -> str:
    """A listing's page around ``data``: as JSON-LD (any JSON value), as microdata (a dict), or none (None);
    ``head``: more of the page's head (its canonical link)."""
    title = title_of(listing)
    visible = (
        f"<h1>{html.escape(title)}</h1>"
        f"<p class=\"price\">{html.escape(price_text(listing, day, market.config.faults))}</p>"
        f"<p>{html.escape(description_of(listing))}</p>"
        f"<a href=\"/contact/{listing.id}\">Contact seller</a>"
    )
    if page_format == "microdata":
        return _page(title, head, f"<article>{visible}{_microdata(data)}</article>")
    if page_format is None:
        return _page(title, head, f"<article>{visible}</article>")
    script = json.dumps(data, ensure_ascii=False).replace("</", "<\\/")
    return _page(title, f'{head}<script type="application/ld+json">{script}</script>', f"<article>{visible}</article>")


def page_count(market: Market, day: int) -> int:
    return max(1, math.ceil(len(market.active_ids(day)) / market.config.page_size))


def index_page(market: Market, day: int, page: int) -> str | None:
    """A page of search results, newest first, with ``rel=next`` pagination; None past the end."""
    ids = market.active_ids(day)
    size = market.config.page_size
    pages = page_count(market, day)
    if page < 1 or page > pages:
        return None
    faults = market.config.faults
    chunk = [market.listing(int(i)) for i in ids[(page - 1) * size: page * size]]
    results = [(lst, url) for lst in chunk for url in listing_urls(lst, faults)]
    items = "".join(
        f'<li class="result"><a class="listing-link" href="{url}">{html.escape(title_of(lst))}</a> '
        f'<span class="price">{html.escape(price_text(lst, day, faults))}</span></li>'
        for lst, url in results
    )
    item_list = {
        "@context": "https://schema.org", "@type": "ItemList", "numberOfItems": len(ids),
        "itemListElement": [{"@type": "ListItem", "position": (page - 1) * size + k + 1, "url": url}
                            for k, (_, url) in enumerate(results)],
    }
    links = ""
    nav = ""
    if page > 1:
        links += f'<link rel="prev" href="/cars?page={page - 1}">'
        nav += f'<a rel="prev" href="/cars?page={page - 1}">Previous</a> '
    if page < pages:
        links += f'<link rel="next" href="/cars?page={page + 1}">'
        nav += f'<a rel="next" href="/cars?page={page + 1}">Next</a>'
    head = links + f'<script type="application/ld+json">{json.dumps(item_list)}</script>'
    body = (f"<h1>Used cars for sale ({len(ids)})</h1><ol class=\"results\">{items}</ol>"
            f"<nav class=\"pagination\">{nav} <span>Page {page} of {pages}</span></nav>")
    return _page(f"Used cars, page {page}", head, body)


def listing_urls(listing: Listing, faults: frozenset[str] = frozenset()) -> list[str]:
    """The URLs a results page links a listing under: its path, and under ``duplicate_flood`` two more."""
    if DUPLICATE_FLOOD in faults:
        return [listing.path, f"{listing.path}-2", f"{listing.path}?ref=featured"]
    return [listing.path]


def home_page(market: Market, day: int) -> str:
    return _page("Used cars", "", f'<h1>{SITE_NAME}</h1><p><a href="/cars?page=1">Browse '
                 f"{len(market.active_ids(day))} used cars</a></p>")
