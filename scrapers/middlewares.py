"""Downloader middlewares: what Scrapy does silently that a batch must show as a reason."""

from __future__ import annotations

from urllib.parse import urljoin, urlsplit

from scrapy.exceptions import IgnoreRequest
from w3lib.url import safe_url_string

REDIRECT_STATUSES = {301, 302, 303, 307, 308}


def on_site(url: str, host: str) -> bool:
    """Whether ``url`` is on ``host`` or a subdomain of it: the rule of Scrapy's OffsiteMiddleware."""
    hostname = urlsplit(url).hostname
    return bool(hostname) and (hostname == host or hostname.endswith(f".{host}"))


class OffsiteRedirect(IgnoreRequest):
    """A request answered with a redirect to a host the crawl may not visit; ``target`` is where it led."""

    def __init__(self, target: str):
        super().__init__(f"redirected off-site to {target}")
        self.target = target


class OffsiteRedirectMiddleware:
    """Fail a request whose answer redirects off the allowed domains, naming the target.

    Scrapy's RedirectMiddleware would schedule the redirected request and its OffsiteMiddleware drop it with one
    debug line and no errback: a listing (or a whole start page) that moved to another site would be missing from
    the batch without a reason. Placed after RedirectMiddleware (a higher number), this sees the answer first.
    """

    def __init__(self, crawler):
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler)

    def process_response(self, request, response):
        location = response.headers.get("Location")
        # Unlike OffsiteMiddleware this ignores dont_filter: a retried request carries it, and must not leave either.
        if response.status not in REDIRECT_STATUSES or not location or request.meta.get("dont_redirect") \
                or request.meta.get("allow_offsite"):
            return response
        target = urljoin(request.url, safe_url_string(location))
        allowed = getattr(self.crawler.spider, "allowed_domains", None) or []
        if allowed and urlsplit(target).scheme in ("http", "https") and not any(on_site(target, h) for h in allowed):
            self.crawler.stats.inc_value("offsite_redirect/count")
            raise OffsiteRedirect(target)
        return response
