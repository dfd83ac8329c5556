"""End to end over HTTP: the real spider crawls the real local marketplace and lands a batch."""

from __future__ import annotations

import json
from pathlib import Path

from carprice.config import SourceConfig
from carprice.landing import list_batches
from carprice.market.generator import Market, MarketConfig
from carprice.market.server import running_marketplace
from carprice.scraping import crawl_source
from carprice_tests.conftest import SMALL_MARKET


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
    assert gbp and all(item["price_eur"] > item["price"] for item in gbp)
    assert {item["make"] for item in listings if item["make_raw"] == "VW"} == {"Volkswagen"}
    miles = [item for item in listings if item["mileage_unit_raw"] == "SMI" and item["mileage_km"]]
    assert miles and all(item["mileage_km"] > float(item["mileage_raw"].replace(",", "").split()[0]) for item in miles)


def test_batch_appears_atomically(crawled_batch):
    source_dir = crawled_batch.path.parent
    assert not [p for p in source_dir.iterdir() if p.name.startswith(".tmp-")]
    assert [b.batch_id for b in list_batches(source_dir.parent)] == [crawled_batch.batch_id]


def test_robots_txt_is_obeyed(tmp_path):
    source = SourceConfig(name="robots", start_url="", scrapy_settings={"DOWNLOAD_DELAY": 0})
    with running_marketplace(seed=1, day=0, listings=100) as url:
        source = SourceConfig(name="robots", start_url=f"{url}/contact/1", scrapy_settings={"DOWNLOAD_DELAY": 0})
        result = crawl_source(source, tmp_path, market_seed=1, market_day=0, market_listings=100, timeout_s=120)
    rejects = _lines(result.batch.rejects_file)
    assert result.batch.manifest["counts"]["listings"] == 0
    assert [r["reason"] for r in rejects] == ["request ignored: Forbidden by robots.txt"]


def test_unreachable_site_gives_a_batch_with_the_reason(tmp_path):
    source = SourceConfig(name="down", start_url="http://127.0.0.1:9/cars",
                          scrapy_settings={"RETRY_TIMES": 1, "DOWNLOAD_TIMEOUT": 5, "ROBOTSTXT_OBEY": False})
    result = crawl_source(source, tmp_path, market_seed=1, market_day=0, market_listings=100, timeout_s=120)
    rejects = _lines(result.batch.rejects_file)
    assert result.batch.manifest["counts"] == {"listings": 0, "rejects": 1, "pages": 0}
    assert rejects[0]["reason"].startswith("download failed: ")


def test_max_pages_limits_pagination(tmp_path):
    source = SourceConfig(name="limited", start_url="embedded", scrapy_settings={"DOWNLOAD_DELAY": 0,
                                                                                  "AUTOTHROTTLE_START_DELAY": 0})
    result = crawl_source(source, tmp_path, market_seed=2, market_day=0, market_listings=300, timeout_s=120,
                          max_pages=2)
    counts = result.batch.manifest["counts"]
    assert counts["listings"] + counts["rejects"] == 100
