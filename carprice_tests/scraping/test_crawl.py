"""End to end over HTTP: the real spider crawls the real local marketplace and lands a batch."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from carprice.config import SourceConfig
from carprice.ingest.landing import scan_landing
from carprice.market.generator import Market, MarketConfig
from carprice.market.server import running_marketplace
from carprice.scraping.crawl import crawl_source
from carprice_tests.conftest import PAGES, SMALL_MARKET, crawl_market

# Real crawls, Dagster runs or processes: the integration tier.
pytestmark = pytest.mark.integration


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_crawl_lands_every_listing_once(crawled_batch):
    manifest = crawled_batch.manifest
    listings, rejects = _lines(crawled_batch.listings_file), _lines(crawled_batch.rejects_file)
    market = Market(MarketConfig.for_active_listings(SMALL_MARKET["market_listings"], seed=SMALL_MARKET["market_seed"]))
    on_sale = len(market.active_ids(SMALL_MARKET["market_day"]))
    assert manifest["finish_reason"] == "finished"
    assert manifest["counts"]["listings"] == len(listings) and manifest["counts"]["rejects"] == len(rejects)
    assert len(listings) + len(rejects) == on_sale, "every listing on sale is either landed or rejected"
    assert len({item["url"] for item in listings}) == len(listings)
    assert {r["reason"] for r in rejects} <= {"missing make", "missing model"}
    assert manifest["spider_version"] and manifest["started_at"] < manifest["finished_at"]


def test_crawled_items_are_normalized(crawled_batch):
    listings = _lines(crawled_batch.listings_file)
    formats = {item["page_format"] for item in listings}
    assert formats == {"json-ld", "microdata"}
    gbp = [item for item in listings if item["currency"] == "GBP" and item["price"]]
    assert gbp and "market_price" not in gbp[0]  # the page's amount and currency land; the platform converts them
    assert {item["make"] for item in listings if item["make_raw"] == "VW"} == {"Volkswagen"}
    miles = [item for item in listings if item["mileage_unit_raw"] == "SMI" and item["mileage_km"]]
    assert miles and all(item["mileage_km"] > float(item["mileage_raw"].replace(",", "").split()[0]) for item in miles)


def test_batch_appears_atomically(crawled_batch):
    source_dir = crawled_batch.path.parent
    assert not [p for p in source_dir.iterdir() if p.name.startswith(".tmp-")]
    assert [b.batch_id for b in scan_landing(source_dir.parent)[0]] == [crawled_batch.batch_id]


def test_robots_txt_is_obeyed(tmp_path):
    with running_marketplace(seed=1, day=0, listings=100) as url:
        source = SourceConfig(name="robots", start_urls=(f"{url}/contact/1",), scrapy_settings={"DOWNLOAD_DELAY": 0})
        result = crawl_source(source, tmp_path, timeout_s=120)
    rejects = _lines(result.batch.rejects_file)
    assert result.batch.manifest["counts"]["listings"] == 0
    assert [(r["reason"], r["detail"]) for r in rejects] == [("request ignored", "Forbidden by robots.txt")]


def test_unreachable_site_gives_a_batch_with_the_reason(tmp_path):
    source = SourceConfig(name="down", start_urls=("http://127.0.0.1:9/cars",),
                          scrapy_settings={"RETRY_TIMES": 1, "DOWNLOAD_TIMEOUT": 5, "ROBOTSTXT_OBEY": False})
    result = crawl_source(source, tmp_path, timeout_s=120)
    rejects = _lines(result.batch.rejects_file)
    assert result.batch.manifest["counts"] == {"listings": 0, "rejects": 1, "pages": 0}
    assert rejects[0]["reason"] == "download failed" and "Connection refused" in rejects[0]["detail"]


def test_max_pages_limits_pagination(tmp_path):
    source = SourceConfig(name="limited", start_urls=("embedded",), scrapy_settings={"DOWNLOAD_DELAY": 0,
                                                                                  "AUTOTHROTTLE_START_DELAY": 0})
    result = crawl_market(tmp_path, seed=2, day=0, listings=300, source=source, max_pages=2)
    counts = result.batch.manifest["counts"]
    assert counts["listings"] + counts["rejects"] == 100


class _FlakySite(ThreadingHTTPServer):
    """A tiny site of another shape: CSS-selected links, an offsite link, a detail page that fails once, a bad price."""

    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _FlakyHandler)
        self.hits: dict[str, int] = {}
        self.detail = (PAGES / "automarkt_detail_jsonld.html").read_bytes()


class _FlakyHandler(BaseHTTPRequestHandler):
    def do_GET(self):
        hits = self.server.hits
        hits[self.path] = hits.get(self.path, 0) + 1
        if self.path == "/robots.txt":
            body, status = b"User-agent: *\nAllow: /\n", 200
        elif self.path == "/list":
            body, status = (b'<html><body><a class="listing-link" href="/ad/1">one</a>'
                            b'<a class="listing-link" href="http://127.0.0.2:1/ad/9">elsewhere</a>'
                            b'<a class="more" rel="next" href="/list2">next</a></body></html>'), 200
        elif self.path == "/list2":
            body, status = (b'<html><body><a class="listing-link" href="/ad/2">two</a>'
                            b'<a class="listing-link" href="/ad/3">three</a></body></html>'), 200
        elif self.path == "/ad/1" and hits[self.path] == 1:
            body, status = b"busy", 503
        elif self.path in ("/ad/1", "/ad/2"):
            body, status = self.server.detail, 200
        elif self.path == "/ad/3":
            body, status = self.server.detail.replace(b'"price": "23,750.00"', b'"price": "call us"'), 200
        else:
            body, status = b"not found", 404
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_spider_retries_follows_selectors_and_stays_on_site(tmp_path):
    site = _FlakySite()
    threading.Thread(target=site.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{site.server_address[1]}/list"
        source = SourceConfig(name="other", start_urls=(url,),
                              scrapy_settings={"DOWNLOAD_DELAY": 0, "AUTOTHROTTLE_START_DELAY": 0})
        result = crawl_source(source, tmp_path, timeout_s=120)
    finally:
        site.shutdown()
        site.server_close()
    listings = _lines(result.batch.listings_file)
    assert sorted(item["url"].rsplit("/", 2)[-2:][1] for item in listings) == ["1", "2"]
    assert site.hits["/ad/1"] == 2, "the 503 was retried once"
    rejects = sorted(_lines(result.batch.rejects_file), key=lambda r: r["reason"])
    assert [(r["reason"], r["url"]) for r in rejects] == [("off-site link", url),
                                                          ("unreadable price", url.replace("/list", "/ad/3"))]
    assert rejects[0]["detail"] == "listing link to http://127.0.0.2:1/ad/9", "rejected, not fetched"
    assert rejects[1]["detail"].startswith("'call us'; {\"url\": ") and '"price_raw": "call us"' in rejects[1]["detail"]
    assert result.batch.manifest["reject_reasons"] == {"off-site link": 1, "unreadable price": 1}


def test_links_to_the_embedded_marketplace_keep_its_public_address_and_open_after_the_crawl(settings):
    """Each crawl serves the market on a free port of its own; the listings keep the public address its pages
    name as canonical, and `carprice ui`/`serve` serve the market as last crawled there, so deal links open."""
    import httpx

    from carprice.cli.servers import start_marketplace
    from carprice.config import MARKET_URL
    from carprice.defs.resources import build_resources
    from carprice.processes import stop_child
    from carprice_tests.cli.test_ui import free_single_port

    scraper = build_resources(settings)["scraper"]
    batch = scraper.crawl("automarkt", SMALL_MARKET["market_day"]).batch
    urls = [row["url"] for row in _lines(batch.listings_file)]
    assert urls and all(url.startswith(f"{MARKET_URL}/cars/") for url in urls)
    recorded = json.loads(settings.layout.marketplace_path.read_text())
    assert (recorded["seed"], recorded["day"]) == (SMALL_MARKET["market_seed"], SMALL_MARKET["market_day"])

    port = free_single_port()
    market = start_marketplace(settings, port)
    try:
        path = urls[0].removeprefix(MARKET_URL)
        deadline = time.monotonic() + 30
        while True:
            try:
                page = httpx.get(f"http://127.0.0.1:{port}{path}")
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the marketplace did not start"
                time.sleep(0.1)
        assert page.status_code == 200 and f'rel="canonical" href="http://127.0.0.1:{port}{path}"' in page.text
    finally:
        stop_child(market)
