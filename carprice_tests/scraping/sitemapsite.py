"""A third local used-car site, unlike the simulated marketplace and the US site: a British dealer group that
publishes no result pages at all, only a sitemap index (robots.txt names it) of two child sitemaps, one of them
gzipped, listing its detail pages (the first also lists the site's own pages: read only ``/used-cars/`` ones).
Its pages carry the car three ways: schema.org ``Car`` as microdata, a ``Vehicle`` inside a JSON-LD ``@graph``
with the page's other entities and the price as "£12,995" text, and a plain JSON-LD ``Car`` whose odometer is a
bare number of miles with no unit. Prices are in pounds, a few imports in dollars. The cars are the simulated
market's (``carprice.market``), so they are realistic and seeded.

Run it alone to configure it as a source: ``python -m carprice_tests.scraping.sitemapsite --port 8790``.
"""

from __future__ import annotations

import argparse
import gzip
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from html import escape
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from carprice.market.generator import Listing, Market, MarketConfig
from carprice_tests.conftest import serving_in_background

SITE_NAME = "Motorhub UK"
KM_PER_MILE = 1.609344
GBP_PER_EUR, USD_PER_EUR = 0.85, 1.087
STYLES = ("microdata", "graph", "bare_miles")
_FUEL = {"petrol": "Petrol", "diesel": "Diesel", "hybrid": "Hybrid", "electric": "Electric", "lpg": "LPG"}


@dataclass(frozen=True)
class Advert:
    """One detail page of the site: the market's listing, and what the page states about it."""

    listing: Listing
    style: str       # one of STYLES: how the page carries the car
    price: int       # in ``currency``
    currency: str    # "GBP", or "USD" for an import
    miles: int

    @property
    def path(self) -> str:
        return f"/used-cars/{self.listing.slug}/{self.listing.id}"

    @property
    def mileage_has_unit(self) -> bool:
        return self.style != "bare_miles"


def adverts(seed: int = 5, listings: int = 400, day: int = 0) -> list[Advert]:
    """The site's adverts on ``day``: the market's listings then, each rendered in a style and a currency
    drawn from its id."""
    market = Market(MarketConfig.for_active_listings(listings, seed=seed))
    out = []
    for listing in market.listings_on(day):
        eur = listing.price_on(day)
        # One in ten is an American import priced in dollars; dealers price at ...95 / ...00.
        currency = "USD" if listing.id % 10 == 3 else "GBP"
        price = int(round(eur * USD_PER_EUR, -2)) if currency == "USD" else int(round(eur * GBP_PER_EUR, -2)) - 5
        out.append(Advert(listing=listing, style=STYLES[listing.id % len(STYLES)], price=max(95, price),
                          currency=currency, miles=round(listing.car.mileage_km / KM_PER_MILE)))
    return out


def _vehicle(advert: Advert) -> dict:
    """The schema.org vehicle of an advert, as a JSON-LD-like dict (microdata renders the same dict)."""
    car, listing = advert.listing.car, advert.listing
    mileage: dict | int = ({"@type": "QuantitativeValue", "value": f"{advert.miles:,}", "unitCode": "SMI"}
                           if advert.mileage_has_unit else advert.miles)
    symbol = "£" if advert.currency == "GBP" else "$"
    offer = {"@type": "Offer", "priceCurrency": advert.currency, "price": str(advert.price),
             "seller": {"@type": "AutoDealer", "name": f"{SITE_NAME} {listing.region}"}}
    if advert.style == "graph":  # the price as the page shows it, the currency only as its symbol
        offer = {"@type": "Offer", "price": f"{symbol}{advert.price:,}", "seller": offer["seller"]}
    return {
        "@type": "Vehicle" if advert.style == "graph" else "Car",
        "name": f"{car.model_year} {car.spec.make} {car.spec.model}",
        "brand": {"@type": "Brand", "name": car.spec.make}, "model": car.spec.model,
        "vehicleModelDate": str(car.model_year), "bodyType": car.spec.body, "fuelType": _FUEL[car.fuel],
        "vehicleTransmission": car.transmission.capitalize(), "color": car.color, "numberOfDoors": car.doors,
        "vehicleEngine": {"@type": "EngineSpecification",
                          "enginePower": {"@type": "QuantitativeValue", "value": round(car.power_kw / 0.7457),
                                          "unitCode": "BHP"}},
        "mileageFromOdometer": mileage, "sku": f"MH{listing.id}", "offers": offer,
    }


def _microdata(value, prop: str | None = None) -> str:
    """A dict as nested schema.org microdata; prices and codes in ``content`` attributes, as sites do."""
    if isinstance(value, dict):
        itemprop = f' itemprop="{prop}"' if prop else ""
        inner = "".join(_microdata(v, k) for k, v in value.items() if not k.startswith("@"))
        return f'<div{itemprop} itemscope itemtype="https://schema.org/{value["@type"]}">{inner}</div>'
    if prop in ("price", "priceCurrency", "unitCode", "sku"):
        return f'<meta itemprop="{prop}" content="{escape(str(value))}">'
    return f'<span itemprop="{prop}">{escape(str(value))}</span>'


def detail_page(advert: Advert, base: str) -> str:
    """An advert's page, the car carried in the advert's style."""
    car, vehicle = advert.listing.car, _vehicle(advert)
    title = f"{car.model_year} {car.spec.make} {car.spec.model}"
    symbol = "£" if advert.currency == "GBP" else "$"
    visible = (f"<h1>{escape(title)}</h1><p class=\"price\">{symbol}{advert.price:,}</p>"
               f"<ul><li>{advert.miles:,} miles</li><li>{escape(car.transmission)}</li></ul>")
    head = f'<link rel="canonical" href="{base}{advert.path}">'
    if advert.style == "microdata":
        body = f"<article>{visible}{_microdata(vehicle)}</article>"
    else:
        vehicle = {"@id": f"{base}{advert.path}#vehicle", **vehicle}
        data: dict = {"@context": "https://schema.org", **vehicle}
        if advert.style == "graph":
            data = {"@context": "https://schema.org", "@graph": [
                {"@type": "WebPage", "@id": f"{base}{advert.path}", "name": title},
                {"@type": "BreadcrumbList", "itemListElement": [
                    {"@type": "ListItem", "position": 1, "name": "Used cars", "item": f"{base}/"}]},
                {"@type": "Organization", "name": SITE_NAME, "url": f"{base}/"},
                vehicle]}
        script = json.dumps(data, ensure_ascii=False).replace("</", "<\\/")
        head += f'<script type="application/ld+json">{script}</script>'
        body = f"<article>{visible}</article>"
    return (f'<!DOCTYPE html><html lang="en-GB"><head><meta charset="utf-8"><title>{escape(title)} | {SITE_NAME}'
            f"</title>{head}</head><body><header>{SITE_NAME}</header><main>{body}</main></body></html>")


def urlset(base: str, ads: list[Advert], lastmod: str) -> bytes:
    """A sitemap listing the adverts' pages."""
    urls = "".join(f"<url><loc>{base}{a.path}</loc><lastmod>{lastmod}</lastmod></url>" for a in ads)
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
            f"{urls}</urlset>").encode()


def sitemap_index(base: str, lastmod: str) -> bytes:
    """The index naming the two child sitemaps (the second gzipped)."""
    maps = "".join(f"<sitemap><loc>{base}{path}</loc><lastmod>{lastmod}</lastmod></sitemap>"
                   for path in ("/sitemaps/cars-1.xml", "/sitemaps/cars-2.xml.gz"))
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<sitemapindex xmlns="http://www.sitemaps.org/schemas/'
            f'sitemap/0.9">{maps}</sitemapindex>').encode()


# The site's own pages, which its first sitemap lists before the adverts (as real sites' sitemaps do).
SITE_PAGES = ("/", "/finance", "/about-us")


def robots_txt(base: str) -> str:
    return f"User-agent: *\nDisallow: /account/\nAllow: /\n\nSitemap: {base}/sitemap_index.xml\n"


class SitemapSiteServer(ThreadingHTTPServer):
    """The site as it is on one day, on a loopback port."""

    daemon_threads = True

    def __init__(self, seed: int, listings: int, day: int = 0, port: int = 0):
        super().__init__(("127.0.0.1", port), _Handler)
        self.ads = adverts(seed, listings, day)
        self.by_path = {a.path: a for a in self.ads}
        self.lastmod = Market(MarketConfig(seed=seed)).date_of(day).isoformat()
        self.hits: dict[str, int] = {}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def route(self, path: str) -> tuple[int, bytes, str]:
        """Status, body and content type of ``path``."""
        base, half = self.url, (len(self.ads) + 1) // 2
        if path == "/robots.txt":
            return 200, robots_txt(base).encode(), "text/plain"
        if path == "/sitemap_index.xml":
            return 200, sitemap_index(base, self.lastmod), "application/xml"
        if path == "/sitemap.xml":
            return 200, urlset(base, self.ads, self.lastmod), "application/xml"
        if path == "/sitemaps/cars-1.xml":
            pages = "".join(f"<url><loc>{base}{page}</loc></url>" for page in SITE_PAGES)
            body = urlset(base, self.ads[:half], self.lastmod).replace(b"<url>", pages.encode() + b"<url>", 1)
            return 200, body, "application/xml"
        if path == "/sitemaps/cars-2.xml.gz":
            return 200, gzip.compress(urlset(base, self.ads[half:], self.lastmod), mtime=0), "application/x-gzip"
        if path in SITE_PAGES:
            return 200, f"<html><body><h1>{SITE_NAME}</h1><p>Search our stock by phone.</p></body></html>".encode(), \
                "text/html; charset=utf-8"
        advert = self.by_path.get(path)
        if advert:
            return 200, detail_page(advert, base).encode(), "text/html; charset=utf-8"
        return 404, b"not found", "text/plain"


class _Handler(BaseHTTPRequestHandler):
    server: SitemapSiteServer

    def do_GET(self):
        path = urlsplit(self.path).path
        self.server.hits[path] = self.server.hits.get(path, 0) + 1
        status, body, ctype = self.server.route(path)
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@contextmanager
def running_sitemapsite(seed: int = 5, listings: int = 400, day: int = 0) -> Iterator[SitemapSiteServer]:
    """The site on ``day`` served on a free loopback port for the block; yields the server (``.url``, ``.ads``,
    ``.hits``)."""
    with serving_in_background(SitemapSiteServer(seed, listings, day)) as server:
        yield server


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve the sitemap-only test site on 127.0.0.1.")
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--listings", type=int, default=400, help="listings on sale on any day")
    parser.add_argument("--day", type=int, default=0)
    parser.add_argument("--port", type=int, default=8790, help="0 picks a free port")
    args = parser.parse_args(argv)
    server = SitemapSiteServer(args.seed, args.listings, args.day, args.port)
    print(f"serving {server.url} ({len(server.ads)} adverts; sitemap_urls = [\"{server.url}/robots.txt\"], "
          f"sitemap_pattern = \"/used-cars/\")", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
