"""Downloader middlewares: what Scrapy does silently that a batch must show as a reason."""

from __future__ import annotations

from urllib.parse import urljoin, urlsplit

from scrapy.exceptions import IgnoreRequest
from scrapy.http import HtmlResponse
from scrapy.utils.response import get_meta_refresh
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
    """Fail a request whose answer redirects (HTTP 3xx) off the allowed domains, naming the target.

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
        if request.meta.get("dont_redirect") or request.meta.get("allow_offsite"):
            return response
        # Unlike OffsiteMiddleware this ignores dont_filter: a retried request carries it, and must not leave either.
        target = self.redirect_target(request, response)
        allowed = getattr(self.crawler.spider, "allowed_domains", None) or []
        if target and allowed and urlsplit(target).scheme in ("http", "https") \
                and not any(on_site(target, host) for host in allowed):
            self.crawler.stats.inc_value("offsite_redirect/count")
            raise OffsiteRedirect(target)
        return response

    def redirect_target(self, request, response) -> str | None:
        """Where the answer sends the request, as RedirectMiddleware reads it; None when it does not."""
        location = response.headers.get("Location")
        if response.status not in REDIRECT_STATUSES or not location:
            return None
        return urljoin(request.url, safe_url_string(location))


class OffsiteMetaRefreshMiddleware(OffsiteRedirectMiddleware):
    """The same for a ``<meta http-equiv="refresh">`` page, placed between HttpCompressionMiddleware (which must
    have decompressed the page) and MetaRefreshMiddleware (which would follow it)."""

    def __init__(self, crawler):
        super().__init__(crawler)
        settings = crawler.settings
        self.enabled = settings.getbool("METAREFRESH_ENABLED")
        self.ignore_tags = settings.getlist("METAREFRESH_IGNORE_TAGS")
        self.max_delay = settings.getfloat("METAREFRESH_MAXDELAY")

    def redirect_target(self, request, response) -> str | None:
        if not self.enabled or request.method == "HEAD" or not isinstance(response, HtmlResponse):
            return None
        interval, url = get_meta_refresh(response, ignore_tags=self.ignore_tags)
        return url if url and interval < self.max_delay else None
