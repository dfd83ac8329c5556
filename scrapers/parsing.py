"""Pure functions from a page's HTML (or a sitemap) to listings, links and rejects; no I/O, no Scrapy engine.

Structured data is read with extruct (JSON-LD and microdata, in its uniform
shape), so a site that marks its cars up either way reads the same.
"""

from __future__ import annotations

import json
import re
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit

import extruct
from lxml import etree
from parsel import Selector
from scrapy.utils._compression import _DecompressionMaxSizeExceeded
from scrapy.utils.gz import gunzip
from scrapy.utils.sitemap import Sitemap, sitemap_urls_from_robots

from scrapers.items import CarListing, Reject

VEHICLE_TYPES = {"Car", "Vehicle", "MotorizedVehicle", "Motorcycle", "BusOrCoach"}


class UnreadablePage(ValueError):
    """A page whose HTML or structured data cannot be read at all; ``reason`` says which."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail = reason, detail


def extract_entities(html: str | bytes, url: str) -> list[tuple[str, dict]]:
    """All schema.org entities on a page, flattened, each with the syntax that held it.

    Raises UnreadablePage for an empty or unparseable document or invalid JSON-LD.
    """
    try:
        data = extruct.extract(html, base_url=url, syntaxes=["json-ld", "microdata"], uniform=True)
    except json.JSONDecodeError as exc:
        raise UnreadablePage("invalid structured data", f"invalid JSON-LD: {exc.msg} at char {exc.pos}") from exc
    except RecursionError as exc:
        raise UnreadablePage("invalid structured data", "JSON-LD nested too deeply to read") from exc
    except etree.LxmlError as exc:
        raise UnreadablePage("unreadable page", f"{type(exc).__name__}: {exc}") from exc
    return [(syntax, entity) for syntax in ("json-ld", "microdata") for entity in _flatten(data.get(syntax, []))]


def _flatten(items: Iterable[Any]) -> Iterator[dict]:
    for item in items:
        if isinstance(item, list):
            yield from _flatten(item)
        elif isinstance(item, dict):
            if "@graph" in item:
                graph = item["@graph"]
                yield from _flatten(graph if isinstance(graph, list) else [graph])
            else:
                yield item


def _types(entity: dict) -> set[str]:
    value = entity.get("@type", [])
    values = value if isinstance(value, list) else [value]
    return {str(v).rsplit("/", 1)[-1] for v in values}


def find_vehicle(entities: list[tuple[str, dict]]) -> tuple[str, dict] | None:
    """The entity describing the car for sale (with its syntax): a Car/Vehicle, or a Product with an Offer."""
    for syntax, entity in entities:
        if _types(entity) & VEHICLE_TYPES:
            return syntax, entity
    for syntax, entity in entities:
        if "Product" in _types(entity) and "offers" in entity:
            return syntax, entity
    return None


def _first(value: Any) -> Any:
    return value[0] if isinstance(value, list) and value else value


def _text(value: Any) -> str | None:
    """A scalar as text; the name of a nested entity; None for nothing."""
    value = _first(value)
    if isinstance(value, dict):
        value = value.get("name", value.get("value"))
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _quantity(value: Any) -> tuple[str | None, str | None]:
    """(value, unit) of a schema.org QuantitativeValue or a bare number."""
    value = _first(value)
    if isinstance(value, dict):
        return _text(value.get("value")), _text(value.get("unitCode") or value.get("unitText"))
    return _text(value), None


# A hostile or broken page must not bloat a row: at most this many properties, keys and values this long.
MAX_PROPERTIES = 40
MAX_PROPERTY_KEY_CHARS = 40
MAX_PROPERTY_VALUE_CHARS = 200


def property_key(name: str) -> str:
    """A property name as a map key: lower case, runs of anything but letters and digits as one ``_``."""
    return re.sub(r"[^a-z0-9]+", "_", name.strip().lower()).strip("_")[:MAX_PROPERTY_KEY_CHARS]


def additional_properties(entity: dict) -> dict[str, str]:
    """The entity's ``additionalProperty`` PropertyValue pairs as {key: text}; the first value of a key wins."""
    props = entity.get("additionalProperty") or []
    out: dict[str, str] = {}
    for prop in props if isinstance(props, list) else [props]:
        if not isinstance(prop, dict) or len(out) >= MAX_PROPERTIES:
            continue
        name, value = _text(prop.get("name") or prop.get("propertyID")), _text(prop.get("value"))
        key = property_key(name) if name else ""
        if key and value is not None and key not in out:
            out[key] = value[:MAX_PROPERTY_VALUE_CHARS]
    return out


def field_types(entity: dict, prefix: str = "", depth: int = 3) -> dict[str, str]:
    """Dotted paths of an entity's properties and their JSON types: the page's schema, for schema checks."""
    out: dict[str, str] = {}
    for key, value in entity.items():
        if key.startswith("@"):
            continue
        path = f"{prefix}{key}"
        value = _first(value) if isinstance(value, list) and value and isinstance(value[0], dict) else value
        if isinstance(value, dict) and depth > 1:
            out.update(field_types(value, f"{path}.", depth - 1))
        else:
            out[path] = _json_type(value)
    return out


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if value is None:
        return "null"
    return "array" if isinstance(value, list) else "object"


def listing_from_entity(entity: dict, url: str, source: str, scraped_at: str, page_format: str) -> CarListing:
    """Map a schema.org vehicle entity (with its Offer) onto a raw CarListing."""
    offer = _first(entity.get("offers")) or {}
    if not isinstance(offer, dict):
        offer = {}
    if "lowPrice" in offer and "price" not in offer:  # AggregateOffer
        offer = {**offer, "price": offer["lowPrice"]}
    engine = _first(entity.get("vehicleEngine")) or {}
    power, power_unit = _quantity(engine.get("enginePower") if isinstance(engine, dict) else None)
    mileage, mileage_unit = _quantity(entity.get("mileageFromOdometer"))
    seller = _first(offer.get("seller")) or {}
    place = _first(offer.get("availableAtOrFrom")) or {}
    address = _first(place.get("address")) if isinstance(place, dict) else None
    region = _text(address.get("addressRegion")) if isinstance(address, dict) else _text(address)
    price, currency = offer.get("price"), offer.get("priceCurrency")
    properties = additional_properties(entity)
    spec = _first(offer.get("priceSpecification"))
    if isinstance(spec, dict):  # the specification carries its own price and currency
        price = spec.get("price") if price is None else price
        currency = currency or spec.get("priceCurrency")
    return CarListing(
        url=url, source=source, scraped_at=scraped_at, page_format=page_format,
        title=_text(entity.get("name")),
        description=_text(entity.get("description")),
        make_raw=_text(entity.get("brand") or entity.get("manufacturer")),
        model=_text(entity.get("model")),
        model_year_raw=_text(entity.get("vehicleModelDate") or entity.get("productionDate")),
        first_registration_raw=_text(entity.get("dateVehicleFirstRegistered")),
        mileage_raw=mileage, mileage_unit_raw=mileage_unit,
        fuel_raw=_text(entity.get("fuelType")),
        transmission_raw=_text(entity.get("vehicleTransmission")),
        body_raw=_text(entity.get("bodyType")),
        power_raw=power, power_unit_raw=power_unit,
        color=_text(entity.get("color")),
        doors_raw=_text(entity.get("numberOfDoors")),
        condition_raw=properties.get("condition") or _text(entity.get("itemCondition")),
        price_raw=_text(price),
        currency_raw=_text(currency),
        seller_type_raw=(sorted(_types(seller)) or [None])[0] if isinstance(seller, dict) else None,
        seller_name=_text(seller.get("name")) if isinstance(seller, dict) else _text(seller),
        region=region,
        listed_at_raw=_text(offer.get("validFrom") or entity.get("datePosted")),
        site_listing_id=_text(entity.get("sku") or entity.get("productID")),
        source_fields=json.dumps(field_types(entity), sort_keys=True),
        properties=json.dumps(properties, sort_keys=True, ensure_ascii=False) if properties else None,
    )


def parse_listing_page(html: str | bytes, url: str, source: str, scraped_at: str) -> CarListing | Reject:
    """A detail page's listing, or a Reject saying why the page has none."""
    try:
        entities = extract_entities(html, url)
    except UnreadablePage as exc:
        return Reject(url=url, source=source, scraped_at=scraped_at, reason=exc.reason, detail=exc.detail)
    found = find_vehicle(entities)
    if found is None:
        types = sorted({t for _, e in entities for t in _types(e)})
        return Reject(url=url, source=source, scraped_at=scraped_at, reason="no schema.org vehicle on page",
                      detail=f"types found: {types}")
    syntax, vehicle = found
    return listing_from_entity(vehicle, canonical_url(html, url), source, scraped_at, syntax)


def canonical_url(html: str | bytes, url: str) -> str:
    """The URL a page names as its own (``<link rel="canonical">``), else the URL it was fetched from.

    Sites reach one listing under several addresses (tracking parameters, the port of one server behind a load
    balancer); the canonical one keeps a listing's link the same from crawl to crawl. Only a canonical URL for the
    same page is taken: same host and same path (it may change scheme, port, query). One on another host (a
    syndicated copy's original) or another path (a site template that names its home page on every car: the
    listings would collapse into one) is not: the listing stays where it was found.
    """
    try:
        sel = Selector(text=html.decode("utf-8", "replace") if isinstance(html, bytes) else html)
        href = sel.css('link[rel~="canonical"]::attr(href)').get()
    except (ValueError, etree.LxmlError):
        return url
    if not href:
        return url
    target, found = urlsplit(urljoin(url, href.strip())), urlsplit(url)
    if target.scheme not in ("http", "https") or target.hostname != found.hostname or target.path != found.path:
        return url
    return target.geturl()


def listing_links(html: str | bytes, url: str, link_css: str | None = None) -> list[str]:
    """Detail-page URLs on a results page: from a schema.org ItemList, else from ``link_css`` anchors."""
    try:
        entities = extract_entities(html, url)
    except UnreadablePage:
        entities = []
    links: list[str] = []
    for _, entity in entities:
        if "ItemList" in _types(entity):
            for element in entity.get("itemListElement") or []:
                target = _item_url(element)
                if target:
                    links.append(urljoin(url, target))
    if not links and link_css:
        sel = Selector(text=html.decode("utf-8", "replace") if isinstance(html, bytes) else html)
        links = [urljoin(url, href) for href in sel.css(f"{link_css}::attr(href)").getall()]
    return list(dict.fromkeys(links))


def _item_url(element: Any) -> str | None:
    """The URL of a ListItem: its own ``url``, or the ``url``/``@id`` of the entity it wraps."""
    if not isinstance(element, dict):
        return None
    item = element.get("item")
    if isinstance(item, dict):
        return _text(item.get("url") or item.get("@id"))
    return _text(element.get("url") or item)


def next_page_link(html: str | bytes, url: str, next_css: str | None = None) -> str | None:
    """The next results page: ``rel=next`` in a link or anchor, else the configured selector."""
    sel = Selector(text=html.decode("utf-8", "replace") if isinstance(html, bytes) else html)
    href = sel.css('link[rel~="next"]::attr(href), a[rel~="next"]::attr(href)').get()
    if not href and next_css:
        href = sel.css(f"{next_css}::attr(href)").get()
    return urljoin(url, href) if href else None


# Query parameters that only say how a visitor arrived (ad campaigns, newsletters, analytics, sessions): a link
# carrying them is the same page, and requesting each variant would fetch one listing several times.
TRACKING_PARAMS = re.compile(r"^(utm_\w+|gclid|dclid|gbraid|wbraid|fbclid|msclkid|yclid|igshid|mc_cid|mc_eid|_ga|_gl"
                             r"|phpsessid|jsessionid|sessionid)$", re.IGNORECASE)


def crawl_url(url: str) -> str:
    """The address a crawl requests for a link: without its fragment, tracking parameters or a ``;jsessionid``.

    Scrapy's duplicate filter already ignores fragments and the order of query parameters; these variants it
    would fetch again, so a listing linked from a results page and from a sitemap would land twice.
    """
    parts = urlsplit(url)
    path = re.sub(r";jsessionid=[^/?#]*", "", parts.path, flags=re.IGNORECASE)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not TRACKING_PARAMS.match(k)]
    # An untouched query keeps its exact text (parse and re-encode could change its escaping).
    kept = parts.query if len(query) == len(parse_qsl(parts.query, keep_blank_values=True)) else urlencode(query)
    return parts._replace(path=path, query=kept, fragment="").geturl()


@dataclass(frozen=True)
class SitemapLinks:
    """What one sitemap document names: more sitemaps (an index, or robots.txt), or pages (a urlset)."""

    kind: str  # "sitemapindex", "urlset" or "robots.txt"
    sitemaps: tuple[str, ...] = ()
    pages: tuple[str, ...] = ()


# A sitemap holds at most 50,000 URLs and 50 MB uncompressed (sitemaps.org); a bigger one is not a sitemap.
SITEMAP_MAX_SIZE = 50 * 1024 * 1024
_GZIP_MAGIC = b"\x1f\x8b\x08"


def sitemap_links(body: bytes, url: str, max_size: int = SITEMAP_MAX_SIZE) -> SitemapLinks:
    """The sitemaps or pages a sitemap (plain or gzipped), a sitemap index or a robots.txt names.

    Read with Scrapy's own sitemap parser, as its SitemapSpider does (entities unresolved, so no XML tricks).
    Raises UnreadablePage for a document that is none of these, is too large (``max_size`` bytes once
    decompressed; 0: no limit) or names nothing.
    """
    if urlsplit(url).path.endswith("/robots.txt"):
        found = tuple(dict.fromkeys(sitemap_urls_from_robots(body, base_url=url)))
        if not found:
            raise UnreadablePage("empty sitemap", "robots.txt has no Sitemap: line")
        return SitemapLinks("robots.txt", sitemaps=found)
    if body[:3] == _GZIP_MAGIC:
        try:
            body = gunzip(body, max_size=max_size)
        except _DecompressionMaxSizeExceeded as exc:
            raise UnreadablePage("sitemap too large", f"over {max_size} bytes once decompressed") from exc
        except (OSError, EOFError, struct.error) as exc:
            raise UnreadablePage("invalid sitemap", f"broken gzip data: {exc}") from exc
    elif max_size and len(body) > max_size:
        raise UnreadablePage("sitemap too large", f"{len(body)} bytes, over {max_size}")
    try:
        sitemap = Sitemap(body)
        entries = list(sitemap)
    except (StopIteration, etree.LxmlError) as exc:
        raise UnreadablePage("invalid sitemap", f"not XML: starts with {body[:60]!r}") from exc
    if sitemap.type not in ("urlset", "sitemapindex"):
        raise UnreadablePage("invalid sitemap", f"root element <{sitemap.type}>, not <urlset> or <sitemapindex>")
    locs = tuple(dict.fromkeys(urljoin(url, entry["loc"]) for entry in entries if entry.get("loc")))
    if not locs:
        raise UnreadablePage("empty sitemap", f"a <{sitemap.type}> naming no <loc>")
    if sitemap.type == "sitemapindex":
        return SitemapLinks(sitemap.type, sitemaps=locs)
    return SitemapLinks(sitemap.type, pages=locs)
