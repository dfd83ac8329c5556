"""Item pipelines, one job each: normalize values, validate listings, land the batch atomically."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

from itemadapter import ItemAdapter
from scrapy import signals
from scrapy.exceptions import DropItem

from scrapers import normalize
from scrapers.batch_writer import BatchWriter
from scrapers.items import CarListing, Reject


class NormalizePipeline:
    """Fill a listing's normalized fields from its raw ones: units, currency, names, dates.

    What a page leaves unsaid comes from the source: the spider's ``default_currency`` (a price without a currency
    symbol or code) and ``distance_unit`` (an odometer reading without a unit, "km" or "mi").
    """

    def __init__(self, crawler=None):
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler)

    def process_item(self, item):
        if not isinstance(item, CarListing):
            return item
        spider = getattr(self.crawler, "spider", None)
        return normalize_listing(item, getattr(spider, "default_currency", None),
                                 getattr(spider, "distance_unit", None) or "km")


def normalize_listing(item: CarListing, default_currency: str | None = None, distance_unit: str = "km") -> CarListing:
    """Return ``item`` with its normalized fields computed from the raw ones.

    The price keeps the page's amount and currency (``default_currency`` when the page names none); converting it
    to the market currency is the platform's job, with the rate of the listing's date (carprice.money).
    """
    item.make = normalize.canonical_make(item.make_raw)
    item.model_year = normalize.model_year(item.model_year_raw) or normalize.model_year(item.first_registration_raw)
    item.first_registration = normalize.month_date(item.first_registration_raw)
    item.mileage_km = normalize.mileage_km(item.mileage_raw, item.mileage_unit_raw, distance_unit)
    item.fuel = normalize.fuel(item.fuel_raw)
    item.transmission = normalize.transmission(item.transmission_raw)
    item.body = item.body_raw.strip().lower() if item.body_raw else None
    item.power_kw = normalize.power_kw(item.power_raw, item.power_unit_raw)
    item.doors = normalize.integer(item.doors_raw)
    item.condition = normalize.condition(item.condition_raw)
    item.price = normalize.parse_number(item.price_raw)
    item.currency = normalize.detect_currency(item.currency_raw, item.price_raw) or (
        default_currency.strip().upper() if default_currency and default_currency.strip() else None)
    item.seller_type = normalize.seller_type(item.seller_type_raw)
    item.listed_at = normalize.month_date(item.listed_at_raw) or item.scraped_at[:10]
    return item


class ValidatePipeline:
    """Drop a listing that cannot be understood, with the reason (the landing pipeline records it)."""

    def process_item(self, item):
        if not isinstance(item, CarListing):
            return item
        problem = listing_problem(item)
        if problem:
            raise ListingDropped(problem)
        return item


class Problem(NamedTuple):
    """Why a listing is unusable: a reason category that counts well, and the raw value that caused it."""

    reason: str
    detail: str = ""


class ListingDropped(DropItem):
    """A listing dropped for a Problem, which the landing pipeline records as a Reject."""

    def __init__(self, problem: Problem):
        super().__init__(f"{problem.reason}: {problem.detail}" if problem.detail else problem.reason)
        self.problem = problem


# How much of a raw value a reject's detail shows: seller text can be any length.
SHOWN_CHARS = 100
# Longest detail a reject keeps.
DETAIL_CHARS = 2000


def shown(value: object) -> str:
    """``value`` as repr, cut to SHOWN_CHARS and saying how long it was, for a reject's detail."""
    text = repr(value)
    return text if len(text) <= SHOWN_CHARS else f"{text[:SHOWN_CHARS]}... ({len(text)} chars)"


def reject_detail(problem: Problem, record: str) -> str:
    """A reject's detail: the problem's raw value first, then the whole record, cut to DETAIL_CHARS."""
    return (f"{problem.detail}; {record}" if problem.detail else record)[:DETAIL_CHARS]


def listing_problem(item: CarListing) -> Problem | None:
    """Why a normalized listing is unusable (a reason category and the raw value), or None when it is usable."""
    if not item.make:
        return Problem("missing make")
    if not item.model:
        return Problem("missing model")
    if item.price_raw is None:
        return Problem("missing price")
    if item.price is None:
        return Problem("unreadable price", shown(item.price_raw))
    if item.currency is None:
        return Problem("price without currency", shown(item.price_raw))
    if not normalize.currency_code(item.currency):
        # A currency with no exchange rate is kept: the platform excludes it with that reason, and a new rate
        # brings it back; only text that cannot be a currency code is lost here.
        return Problem("unreadable currency", shown(item.currency))
    if item.price < 0:
        return Problem("negative price", shown(item.price_raw))
    if item.mileage_raw is not None and item.mileage_km is None:
        return Problem("unreadable mileage", shown(item.mileage_raw))
    if item.mileage_km is not None and item.mileage_km < 0:
        return Problem("negative mileage", shown(item.mileage_raw))
    for name, raw in (("doors", item.doors_raw), ("model_year", item.model_year_raw or item.first_registration_raw)):
        value = getattr(item, name)
        if value is not None and abs(value) > normalize.INT64_MAX:
            return Problem(f"{name} out of range", shown(raw))
    return None


class LandingZonePipeline:
    """Write accepted listings and rejects of one crawl as a batch that appears whole or not at all."""

    def __init__(self, landing_dir: Path, crawler, batch_id: str | None = None):
        self.landing_dir = landing_dir
        self.crawler = crawler
        self.batch_id = batch_id
        self.writer: BatchWriter | None = None

    @classmethod
    def from_crawler(cls, crawler):
        pipeline = cls(Path(crawler.settings.get("LANDING_DIR")), crawler, crawler.settings.get("BATCH_ID"))
        crawler.signals.connect(pipeline.item_dropped, signal=signals.item_dropped)
        crawler.signals.connect(pipeline.spider_error, signal=signals.spider_error)
        crawler.signals.connect(pipeline.spider_closed, signal=signals.spider_closed)
        return pipeline

    @property
    def source(self) -> str:
        return self.crawler.spider.source

    def open_spider(self):
        self.writer = BatchWriter(self.landing_dir, self.source, self.batch_id)

    def process_item(self, item):
        if isinstance(item, Reject):
            self.writer.add_reject(asdict(item))
        else:
            self.writer.add_listing(ItemAdapter(item).asdict())
        return item

    def item_dropped(self, item, response, exception, spider=None):
        url = getattr(item, "url", None) or (response.url if response is not None else "")
        problem = getattr(exception, "problem", None) or Problem(str(exception))
        self.writer.add_reject(asdict(Reject(
            url=url, source=self.source, scraped_at=getattr(item, "scraped_at", _now()), reason=problem.reason,
            detail=reject_detail(problem, json.dumps(ItemAdapter(item).asdict(), default=str)))))

    def spider_error(self, failure, response, spider=None):
        self.writer.add_reject(asdict(Reject(url=response.url, source=self.source, scraped_at=_now(),
                                             reason="spider error", detail=repr(failure.value)[:2000])))

    def spider_closed(self, spider, reason):
        if reason == "shutdown":
            # Stopped by a signal (the platform stopping the crawl, or its parent dying): a crawl cut short is
            # not a day's batch, and the landing zone holds whole batches only.
            self.writer.discard()
            spider.logger.warning("crawl stopped before its end: batch %s discarded", self.writer.batch_id)
            return
        pages = self.crawler.stats.get_value("response_received_count", 0)
        path = self.writer.finish(start_url=(spider.start_urls or spider.sitemap_urls)[0], spider=spider.name,
                                  finish_reason=reason, counts={"pages": pages},
                                  discovery=dict(getattr(spider, "discovery", {})))
        spider.logger.info("landed batch %s at %s (%s)", self.writer.batch_id, path, self.writer.counts)


def _now() -> str:
    return datetime.now(UTC).isoformat()
