"""Discovery end to end over HTTP: sitemaps, each listing once per crawl, and hostile sites that must give a batch
whose rejects say what went wrong (real local servers, the real spider in its own process)."""

from __future__ import annotations

import gzip
import json
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from carprice.config import SourceConfig
from carprice.scraping.crawl import crawl_source
from carprice_tests.conftest import PAGES, serving_in_background
from carprice_tests.scraping.sitemapsite import KM_PER_MILE, SITE_PAGES, running_sitemapsite

# Real crawls, Dagster runs or processes: the integration tier.
pytestmark = pytest.mark.integration

# Loopback answers in milliseconds: no delay, no throttling, so each crawl takes seconds.
FAST = {"delay_s": 0, "concurrency": 16, "autothrottle": False}
DETAIL = (PAGES / "automarkt_detail_jsonld.html").read_bytes()


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


# An answer: status, body and headers (a Content-Length is added unless the headers say "stream").
Answer = tuple[int, bytes, dict[str, str]]


class _Site(ThreadingHTTPServer):
    """A small site of fixed routes (path without query -> answer, or a function of the server), counting hits."""

    daemon_threads = True

    def __init__(self, routes: dict[str, Answer | Callable[[_Site], Answer]]):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.routes = {"/robots.txt": (200, b"User-agent: *\nAllow: /\n", {}), **routes}
        self.hits: Counter[str] = Counter()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: _Site

    def do_GET(self):
        path = urlsplit(self.path).path
        self.server.hits[path] += 1
        answer = self.server.routes.get(path, (404, b"not found", {}))
        status, body, headers = answer(self.server) if callable(answer) else answer
        self.send_response(status)
        for key, value in headers.items():
            if key != "stream":
                self.send_header(key, value)
        if "stream" not in headers:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@contextmanager
def serving(routes: dict) -> Iterator[_Site]:
    with serving_in_background(_Site(routes)) as site:
        yield site


def html(links: list[str], next_href: str | None = None) -> Answer:
    """A results page: ``listing-link`` anchors, and a rel=next link."""
    anchors = "".join(f'<a class="listing-link" href="{href}">car</a>' for href in links)
    more = f'<a rel="next" href="{next_href}">next</a>' if next_href else ""
    return 200, f"<html><body>{anchors}{more}</body></html>".encode(), {"Content-Type": "text/html"}


def urlset(site: _Site, paths: list[str]) -> Answer:
    locs = "".join(f"<url><loc>{site.url}{path}</loc></url>" for path in paths)
    return 200, f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{locs}</urlset>'.encode(), \
        {"Content-Type": "application/xml"}


def detail(car_id: int, price: str = '"23,750.00"') -> Answer:
    """A listing page (the saved marketplace page) under its own id, optionally at another price."""
    body = DETAIL.replace(b'"sku": "14469"', f'"sku": "{car_id}"'.encode()).replace(
        b'"price": "23,750.00"', f'"price": {price}'.encode())
    return 200, body, {"Content-Type": "text/html"}


# --- a site that publishes only sitemaps --------------------------------------------------------------------


def test_a_sitemap_only_site_lands_every_advert_with_its_price_and_mileage(tmp_path):
    with running_sitemapsite(seed=5, listings=400) as site:
        # Its sitemap lists the site's own pages too: only the adverts are read as listings.
        source = SourceConfig(name="motorhub", sitemap_urls=(f"{site.url}/robots.txt",), currency="GBP",
                              distance_unit="mi", sitemap_pattern="/used-cars/", **FAST)
        result = crawl_source(source, tmp_path, timeout_s=300)
        ads = {ad.path: ad for ad in site.ads}
        hits = dict(site.hits)
    manifest, listings = result.batch.manifest, lines(result.batch.listings_file)
    print(f"\nsitemap crawl: {len(ads)} adverts, {manifest['counts']['pages']} pages in {result.seconds:.1f} s "
          f"({manifest['counts']['pages'] / result.seconds:.0f} pages/s with the process start), "
          f"discovery {manifest['discovery']}")
    assert manifest["finish_reason"] == "finished" and manifest["reject_reasons"] == {}
    assert manifest["discovery"] == {"result_pages": 0, "sitemaps": 4, "sitemap_links": len(ads),
                                     "sitemap_links_skipped": len(SITE_PAGES)}
    assert hits["/sitemaps/cars-2.xml.gz"] == 1 and hits["/sitemap_index.xml"] == 1
    assert not any(hits.get(path) for path in SITE_PAGES), "pages the pattern leaves out are not fetched"
    assert len(listings) == len(ads) and all(hits[path] == 1 for path in ads), "each advert fetched once"
    assert {item["page_format"] for item in listings} == {"json-ld", "microdata"}
    for item in listings:
        ad = ads[urlsplit(item["url"]).path]
        assert (item["price"], item["currency"]) == (ad.price, ad.currency)
        # A bare number too: the source's distance unit (mi) says what it means (NormalizePipeline's fallback).
        assert item["mileage_km"] == pytest.approx(ad.miles * KM_PER_MILE, abs=0.1)
        if not ad.mileage_has_unit:
            assert (item["mileage_raw"], item["mileage_unit_raw"]) == (str(ad.miles), None)
    assert {ad.mileage_has_unit for ad in ads.values()} == {True, False}


def test_an_unchanged_listing_is_landed_again_by_the_next_crawl(tmp_path):
    with running_sitemapsite(seed=5, listings=60) as site:
        source = SourceConfig(name="motorhub", sitemap_urls=(f"{site.url}/sitemap.xml",), **FAST)
        first, second = (crawl_source(source, tmp_path, timeout_s=300).batch for _ in range(2))
        hits = dict(site.hits)
    assert first.batch_id != second.batch_id
    seen = [{(item["url"], item["price"]) for item in lines(batch.listings_file)} for batch in (first, second)]
    assert seen[0] == seen[1] and len(seen[0]) == len(site.ads), "no memory across crawls skips a listing"
    assert all(hits[ad.path] == 2 for ad in site.ads), "fetched again, not served from a cache"


# --- each listing once per crawl ----------------------------------------------------------------------------


def test_a_listing_linked_from_two_pages_and_a_sitemap_is_fetched_once(tmp_path):
    routes = {
        "/list": html(["/ad/1#photos", "/ad/2?utm_source=newsletter", "/ad/2"], next_href="/list2"),
        "/list2": html(["/ad/1", "/ad/2?gclid=abc#top"]),
        "/sitemap.xml": lambda site: urlset(site, ["/ad/1?utm_campaign=spring", "/ad/3", "/ad/3#gallery"]),
        "/ad/1": detail(1), "/ad/2": detail(2), "/ad/3": detail(3),
    }
    with serving(routes) as site:
        source = SourceConfig(name="twice", start_urls=(f"{site.url}/list",),
                              sitemap_urls=(f"{site.url}/sitemap.xml",), **FAST)
        result = crawl_source(source, tmp_path, timeout_s=120)
    listings = lines(result.batch.listings_file)
    assert {path: site.hits[path] for path in ("/ad/1", "/ad/2", "/ad/3")} == {"/ad/1": 1, "/ad/2": 1, "/ad/3": 1}
    assert sorted(item["site_listing_id"] for item in listings) == ["1", "2", "3"]
    assert result.batch.manifest["counts"]["rejects"] == 0
    assert result.batch.manifest["discovery"] == {"result_pages": 2, "sitemaps": 1, "sitemap_links": 3,
                                                  "sitemap_links_skipped": 0}


# --- hostile sites ------------------------------------------------------------------------------------------


def test_a_site_without_vehicle_data_gives_rejects_that_say_so(tmp_path):
    blank = (200, (PAGES / "no_structured_data.html").read_bytes(), {"Content-Type": "text/html"})
    routes = {"/list": html(["/ad/1", "/ad/2"], next_href="/list2"), "/list2": html([]), "/ad/1": blank,
              "/ad/2": blank}
    with serving(routes) as site:
        source = SourceConfig(name="novehicles", start_urls=(f"{site.url}/list",), **FAST)
        result = crawl_source(source, tmp_path, timeout_s=120)
    manifest, rejects = result.batch.manifest, lines(result.batch.rejects_file)
    assert manifest["counts"]["listings"] == 0 and manifest["finish_reason"] == "finished"
    assert manifest["reject_reasons"] == {"no schema.org vehicle on page": 2, "no listing links": 1}
    assert {r["url"].removeprefix(site.url) for r in rejects} == {"/ad/1", "/ad/2", "/list2"}


def _streamed(body: bytes) -> Answer:
    """An answer without Content-Length: the downloader learns its size only while reading it."""
    return 200, body, {"Content-Type": "application/xml", "stream": "yes"}


def test_malformed_and_oversized_sitemaps_give_rejects_with_the_reason(tmp_path):
    big = b'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">' + b"<url><loc>/ad/1</loc></url>" * 4000 \
        + b"</urlset>"
    xml = {"Content-Type": "application/xml"}
    routes = {
        "/not-xml.xml": (200, b"Service temporarily unavailable, try again later", {"Content-Type": "text/plain"}),
        "/wrong-root.xml": (200, b"<html><body><h1>Our cars</h1></body></html>", {"Content-Type": "text/html"}),
        "/big.xml": (200, big, xml),
        "/big-streamed.xml": _streamed(big),
        "/bomb.xml.gz": (200, gzip.compress(big), {"Content-Type": "application/x-gzip"}),
        "/ok.xml": lambda site: urlset(site, ["/ad/1"]),
        "/ad/1": detail(1),
    }
    limit = 50_000
    assert len(big) > limit > len(gzip.compress(big))
    with serving(routes) as site:
        maps = tuple(f"{site.url}{path}" for path in routes if path.endswith((".xml", ".gz")))
        source = SourceConfig(name="badmaps", sitemap_urls=maps, scrapy_settings={"SITEMAP_MAX_SIZE": limit}, **FAST)
        result = crawl_source(source, tmp_path, timeout_s=120)
    manifest = result.batch.manifest
    rejects = {r["url"].removeprefix(site.url): (r["reason"], r["detail"]) for r in lines(result.batch.rejects_file)}
    assert manifest["finish_reason"] == "finished" and manifest["counts"]["listings"] == 1
    assert manifest["reject_reasons"] == {"invalid sitemap": 2, "sitemap too large": 3}
    assert rejects["/not-xml.xml"] == ("invalid sitemap", "not XML: starts with b'Service temporarily unavailable, "
                                                          "try again later'")
    assert rejects["/wrong-root.xml"] == ("invalid sitemap", "root element <html>, not <urlset> or <sitemapindex>")
    assert rejects["/bomb.xml.gz"] == ("sitemap too large", f"over {limit} bytes once decompressed")
    for path in ("/big.xml", "/big-streamed.xml"):
        assert rejects[path][0] == "sitemap too large" and f"over {limit} bytes" in rejects[path][1], rejects[path]


def test_a_site_answering_429_and_503_for_long_gives_http_rejects_after_the_retries(tmp_path):
    busy = (429, b"slow down", {"Retry-After": "1"})
    down = (503, b"maintenance", {})
    routes = {"/list": html(["/ad/1", "/ad/2", "/ad/3", "/ad/4"]), "/ad/1": busy, "/ad/2": busy, "/ad/3": down,
              "/ad/4": detail(4), "/sitemap.xml": down}
    with serving(routes) as site:
        source = SourceConfig(name="busy", start_urls=(f"{site.url}/list",), sitemap_urls=(f"{site.url}/sitemap.xml",),
                              scrapy_settings={"RETRY_TIMES": 2}, **FAST)
        result = crawl_source(source, tmp_path, timeout_s=120)
    manifest, rejects = result.batch.manifest, lines(result.batch.rejects_file)
    assert manifest["counts"]["listings"] == 1
    assert manifest["reject_reasons"] == {"HTTP 429": 2, "HTTP 503": 2}
    assert sorted((r["url"].removeprefix(site.url), r["reason"]) for r in rejects) == [
        ("/ad/1", "HTTP 429"), ("/ad/2", "HTTP 429"), ("/ad/3", "HTTP 503"), ("/sitemap.xml", "HTTP 503")]
    assert all(site.hits[path] == 3 for path in ("/ad/1", "/ad/2", "/ad/3", "/sitemap.xml")), "1 try + 2 retries"


def test_a_redirect_to_another_site_is_a_reject_naming_the_target(tmp_path):
    def moved(path: str) -> Callable[[_Site], Answer]:
        # 127.0.0.2 is loopback too, but another host: the crawl must not follow it.
        return lambda site: (301, b"", {"Location": f"http://127.0.0.2:{site.server_address[1]}{path}"})

    def refreshed(site: _Site) -> Answer:
        target = f"http://127.0.0.2:{site.server_address[1]}/ad/4"
        return 200, f'<html><head><meta http-equiv="refresh" content="0; url={target}"></head></html>'.encode(), \
            {"Content-Type": "text/html"}

    routes = {"/list": html(["/ad/1", "/ad/2", "/ad/3", "/ad/4"]), "/old-list": moved("/list"),
              "/ad/1": moved("/ad/1"), "/ad/2": (302, b"", {"Location": "/ad/2-new"}), "/ad/2-new": detail(2),
              "/ad/3": detail(3), "/ad/4": refreshed}
    with serving(routes) as site:
        source = SourceConfig(name="moved", start_urls=(f"{site.url}/list", f"{site.url}/old-list"), **FAST)
        result = crawl_source(source, tmp_path, timeout_s=120)
    manifest, rejects = result.batch.manifest, lines(result.batch.rejects_file)
    port = site.server_address[1]
    assert sorted(item["site_listing_id"] for item in lines(result.batch.listings_file)) == ["2", "3"]
    assert manifest["reject_reasons"] == {"off-site redirect": 3}
    assert sorted((r["url"].removeprefix(site.url), r["detail"]) for r in rejects) == [
        ("/ad/1", f"redirects to http://127.0.0.2:{port}/ad/1"),
        ("/ad/4", f"redirects to http://127.0.0.2:{port}/ad/4"),  # a meta refresh
        ("/old-list", f"redirects to http://127.0.0.2:{port}/list")]

