"""A generic spider for used-car sites that publish schema.org vehicle data."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from urllib.parse import urlsplit

import scrapy
from scrapy.exceptions import DownloadCancelledError, IgnoreRequest
from scrapy.spidermiddlewares.httperror import HttpError
from twisted.internet.defer import CancelledError

from scrapers.batch_writer import safe_name
from scrapers.items import Reject
from scrapers.middlewares import OffsiteRedirect, on_site
from scrapers.parsing import (
    SITEMAP_MAX_SIZE,
    UnreadablePage,
    crawl_url,
    listing_links,
    next_page_link,
    parse_listing_page,
    sitemap_links,
)

__all__ = ["ListingsSpider", "on_site"]


class ListingsSpider(scrapy.Spider):
    """Walk a site's result pages (rel=next or a selector) and its sitemaps, and read every listing page's
    Car/Offer data; each listing page is fetched once per crawl, however many pages or sitemaps link it.

    Arguments (``-a name=value``; lists as JSON): ``start_urls`` (or one ``start_url``), ``sitemap_urls`` (sitemaps,
    sitemap indexes, gzipped or not, or a robots.txt naming them: every page they list is read as a listing),
    ``source`` (batch name, default: the first host), ``link_css`` and ``next_css`` (selectors for sites without
    ItemList data or rel=next), ``allowed_domains`` (default: the hosts of the start and sitemap URLs),
    ``default_currency`` and ``distance_unit`` (what a page that names none means), ``max_pages`` (stop following
    pagination after this many result pages).
    """

    name = "listings"

    def __init__(self, start_urls: str | list[str] = "[]", start_url: str | None = None, sitemap_urls: str = "[]",
                 source: str | None = None, link_css: str = "a.listing-link", next_css: str | None = None,
                 allowed_domains: str = "[]", default_currency: str | None = None, distance_unit: str = "km",
                 max_pages: str | int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.start_urls = _url_list("start_urls", start_urls) + ([start_url] if start_url else [])
        self.sitemap_urls = _url_list("sitemap_urls", sitemap_urls)
        if not self.start_urls and not self.sitemap_urls:
            raise ValueError("give start_urls or sitemap_urls")
        hosts = []
        for url in self.start_urls + self.sitemap_urls:
            host = urlsplit(url).hostname
            if not host:
                raise ValueError(f"a start or sitemap URL needs a host: {url!r}")
            hosts.append(host)
        self.allowed_domains = _url_list("allowed_domains", allowed_domains) or list(dict.fromkeys(hosts))
        self.source = safe_name("source", source or re.sub(r"[^A-Za-z0-9_-]", "_", hosts[0]))
        self.link_css = link_css
        self.next_css = next_css
        self.default_currency = default_currency or None
        self.distance_unit = distance_unit
        self.max_pages = int(max_pages) if max_pages else None
        self.sitemap_max_size = SITEMAP_MAX_SIZE
        self.sitemap_listings = self.sitemap_follow = re.compile("")
        self.result_pages = 0
        # How the crawl found its pages, for the batch's manifest.
        self.discovery = {"result_pages": 0, "sitemaps": 0, "sitemap_links": 0, "sitemap_links_skipped": 0}

    @classmethod
    def from_crawler(cls, crawler, *args, **kwargs):
        spider = super().from_crawler(crawler, *args, **kwargs)
        settings = crawler.settings
        spider.sitemap_max_size = settings.getint("SITEMAP_MAX_SIZE", SITEMAP_MAX_SIZE)
        # Like SitemapSpider's sitemap_rules and sitemap_follow: a site's sitemap also lists its other pages.
        spider.sitemap_listings = _pattern("SITEMAP_LISTING_PATTERN", settings.get("SITEMAP_LISTING_PATTERN"))
        spider.sitemap_follow = _pattern("SITEMAP_FOLLOW_PATTERN", settings.get("SITEMAP_FOLLOW_PATTERN"))
        return spider

    async def start(self):
        for url in self.sitemap_urls:
            yield self.sitemap_request(crawl_url(url))
        for url in self.start_urls:
            yield scrapy.Request(crawl_url(url), callback=self.parse, errback=self.failed)

    def sitemap_request(self, url: str) -> scrapy.Request:
        """A request for a sitemap, cut off by the downloader once it passes SITEMAP_MAX_SIZE bytes."""
        return scrapy.Request(url, callback=self.parse_sitemap, errback=self.failed,
                              meta={"sitemap": True, "download_maxsize": self.sitemap_max_size})

    def parse(self, response):
        """A results page: follow every listing on it, then the next page."""
        self.result_pages += 1
        self.discovery["result_pages"] += 1
        links = listing_links(response.body, response.url, self.link_css)
        if not links:
            # A results page (a start URL) showing no cars: the site changed, or the start URL is wrong.
            yield Reject(url=response.url, source=self.source, scraped_at=_now(), reason="no listing links",
                         detail=f"no ItemList data and no link matching {self.link_css!r} on the results page")
        for url in links:
            yield self.follow(response, url, "listing", self.parse_listing)
        next_url = next_page_link(response.body, response.url, self.next_css)
        if next_url and (self.max_pages is None or self.result_pages < self.max_pages):
            yield self.follow(response, next_url, "next page", self.parse)

    def parse_sitemap(self, response):
        """A sitemap, sitemap index or robots.txt: request the sitemaps it names, and read the pages as listings."""
        self.discovery["sitemaps"] += 1
        try:
            links = sitemap_links(response.body, response.url, self.sitemap_max_size)
        except UnreadablePage as exc:
            yield Reject(url=response.url, source=self.source, scraped_at=_now(), reason=exc.reason,
                         detail=exc.detail[:2000])
            return
        pages = [url for url in links.pages if self.sitemap_listings.search(url)]
        self.discovery["sitemap_links"] += len(pages)
        self.discovery["sitemap_links_skipped"] += len(links.pages) - len(pages)
        for url in links.sitemaps:
            # As SitemapSpider does: robots.txt's Sitemap: lines are always read; the follow pattern picks among an
            # index's sitemaps.
            if links.kind == "robots.txt" or self.sitemap_follow.search(url):
                yield self.follow(response, url, "sitemap", self.parse_sitemap)
            else:
                self.discovery["sitemaps_skipped"] = self.discovery.get("sitemaps_skipped", 0) + 1
        for url in pages:
            yield self.follow(response, url, "listing", self.parse_listing)

    def follow(self, response, url: str, kind: str, callback) -> scrapy.Request | Reject:
        """A request for a link on ``response`` (at its crawl address), or a Reject when it leads to another host.

        Scrapy's OffsiteMiddleware would drop that request with one debug line, so a site whose pagination moves
        host would give a short batch that looks finished; the reject shows in the manifest's reasons instead.
        """
        url = crawl_url(url)
        if not any(on_site(url, host) for host in self.allowed_domains):
            return Reject(url=response.url, source=self.source, scraped_at=_now(), reason="off-site link",
                          detail=f"{kind} link to {url}"[:2000])
        if callback == self.parse_sitemap:
            return self.sitemap_request(url)
        return scrapy.Request(url, callback=callback, errback=self.failed)

    def parse_listing(self, response):
        """A listing page: its CarListing, or a Reject with the reason."""
        yield parse_listing_page(response.body, response.url, self.source, _now())

    def failed(self, failure):
        """A request that failed for good (after retries) becomes a reject, not a silent gap."""
        request = failure.request
        # Reasons are categories that count well (HTTP statuses are few); the message goes in the detail.
        if failure.check(OffsiteRedirect):
            reason, detail = "off-site redirect", f"redirects to {failure.value.target}"
        elif failure.check(HttpError):
            reason, detail = f"HTTP {failure.value.response.status}", str(failure.value)
        elif failure.check(DownloadCancelledError, CancelledError):
            # The downloader stops a body over its size limit (a sitemap's is SITEMAP_MAX_SIZE): say which limit.
            limit = request.meta.get("download_maxsize")
            reason = "sitemap too large" if request.meta.get("sitemap") else "download cancelled"
            message = str(failure.value)
            detail = f"download stopped over {limit} bytes{': ' if message else ''}{message}" if limit else message
        elif failure.check(IgnoreRequest):
            reason, detail = "request ignored", str(failure.value)
        else:
            reason, detail = "download failed", f"{type(failure.value).__name__}: {failure.value}"
        yield Reject(url=request.url, source=self.source, scraped_at=_now(), reason=reason, detail=detail[:500])


def _url_list(name: str, value: str | list[str]) -> list[str]:
    """A spider argument holding a list: JSON text from the command line, or a list when built in Python."""
    if isinstance(value, list):
        return value
    try:
        parsed = json.loads(value) if value else []
    except json.JSONDecodeError:
        parsed = [value]  # one plain URL
    if isinstance(parsed, str):
        parsed = [parsed]
    if not isinstance(parsed, list) or not all(isinstance(v, str) for v in parsed):
        raise ValueError(f"{name} must be a JSON list of strings, got {value!r}")
    return parsed


def _pattern(name: str, value: str | None) -> re.Pattern[str]:
    """A setting's regular expression (empty: every URL matches); a ValueError naming the setting if invalid."""
    try:
        return re.compile(value or "")
    except re.error as exc:
        raise ValueError(f"{name} is not a regular expression: {value!r} ({exc})") from exc


def _now() -> str:
    return datetime.now(UTC).isoformat()
