"""A generic spider for used-car sites that publish schema.org vehicle data."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from urllib.parse import urlsplit

import scrapy
from scrapy.exceptions import IgnoreRequest
from scrapy.spidermiddlewares.httperror import HttpError

from scrapers.batch_writer import safe_name
from scrapers.items import Reject
from scrapers.parsing import listing_links, next_page_link, parse_listing_page


class ListingsSpider(scrapy.Spider):
    """Walk a site's result pages (rel=next or a selector) and read every listing page's Car/Offer data.

    Arguments (``-a name=value``): ``start_url`` (required), ``source`` (batch name, default: the host),
    ``link_css`` and ``next_css`` (selectors for sites without ItemList data or rel=next),
    ``max_pages`` (stop following pagination after this many result pages), ``default_currency`` and
    ``distance_unit`` (what a page's price and odometer are in when it does not say; NormalizePipeline reads them).
    """

    name = "listings"

    def __init__(self, start_url: str, source: str | None = None, link_css: str = "a.listing-link",
                 next_css: str | None = None, max_pages: str | int | None = None,
                 default_currency: str | None = None, distance_unit: str = "km", **kwargs):
        super().__init__(**kwargs)
        self.start_url = start_url
        host = urlsplit(start_url).hostname
        if not host:
            raise ValueError(f"start_url needs a host: {start_url!r}")
        self.allowed_domains = [host]
        self.source = safe_name("source", source or re.sub(r"[^A-Za-z0-9_-]", "_", host))
        self.link_css = link_css
        self.next_css = next_css
        self.max_pages = int(max_pages) if max_pages else None
        self.result_pages = 0
        self.default_currency = default_currency
        self.distance_unit = distance_unit

    async def start(self):
        yield scrapy.Request(self.start_url, callback=self.parse, errback=self.failed)

    def parse(self, response):
        """A results page: follow every listing on it, then the next page."""
        self.result_pages += 1
        for url in listing_links(response.body, response.url, self.link_css):
            yield self.follow(response, url, "listing", self.parse_listing)
        next_url = next_page_link(response.body, response.url, self.next_css)
        if next_url and (self.max_pages is None or self.result_pages < self.max_pages):
            yield self.follow(response, next_url, "next page", self.parse)

    def follow(self, response, url: str, kind: str, callback) -> scrapy.Request | Reject:
        """A request for a link on ``response``, or a Reject when it leads to another host.

        Scrapy's OffsiteMiddleware would drop that request with one debug line, so a site whose pagination moves
        host would give a short batch that looks finished; the reject shows in the manifest's reasons instead.
        """
        if on_site(url, self.allowed_domains[0]):
            return scrapy.Request(url, callback=callback, errback=self.failed)
        return Reject(url=response.url, source=self.source, scraped_at=_now(), reason="off-site link",
                      detail=f"{kind} link to {url}"[:2000])

    def parse_listing(self, response):
        """A listing page: its CarListing, or a Reject with the reason."""
        yield parse_listing_page(response.body, response.url, self.source, _now())

    def failed(self, failure):
        """A request that failed for good (after retries) becomes a reject, not a silent gap."""
        request = failure.request
        # Reasons are categories that count well (HTTP statuses are few); the message goes in the detail.
        if failure.check(HttpError):
            reason, detail = f"HTTP {failure.value.response.status}", str(failure.value)
        elif failure.check(IgnoreRequest):
            reason, detail = "request ignored", str(failure.value)
        else:
            reason, detail = "download failed", f"{type(failure.value).__name__}: {failure.value}"
        yield Reject(url=request.url, source=self.source, scraped_at=_now(), reason=reason, detail=detail[:500])


def on_site(url: str, host: str) -> bool:
    """Whether ``url`` is on ``host`` or a subdomain of it: the rule of Scrapy's OffsiteMiddleware."""
    hostname = urlsplit(url).hostname
    return bool(hostname) and (hostname == host or hostname.endswith(f".{host}"))


def _now() -> str:
    return datetime.now(UTC).isoformat()
