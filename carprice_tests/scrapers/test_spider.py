"""The spider's arguments (a source becomes a folder name, so only plain names are taken), and links it follows."""

from __future__ import annotations

import pytest
import scrapy
from scrapy.downloadermiddlewares.offsite import OffsiteMiddleware
from scrapy.http import HtmlResponse, TextResponse, XmlResponse
from scrapy.utils.test import get_crawler

from carprice_tests.conftest import PAGES
from scrapers.items import Reject
from scrapers.middlewares import OffsiteMetaRefreshMiddleware, OffsiteRedirect, OffsiteRedirectMiddleware
from scrapers.spiders.listings import ListingsSpider, on_site


def test_the_source_defaults_to_the_host_as_a_plain_name():
    assert ListingsSpider(start_url="http://127.0.0.1:8765/cars").source == "127_0_0_1"
    assert ListingsSpider(start_url="https://www.cars.example/used", source="cars_example").source == "cars_example"


@pytest.mark.parametrize("source", ["../../tmp/x", "a/b", "with space", "dots.are.not.names"])
def test_a_source_that_is_not_a_plain_name_is_refused(source):
    with pytest.raises(ValueError, match="a source is a plain name"):
        ListingsSpider(start_url="http://127.0.0.1:8765/cars", source=source)


# --- links to another host ------------------------------------------------------------------------

MOVED_URL = "https://www.autos.example.de/gebrauchtwagen?seite=2"


def test_links_to_another_host_are_rejects_not_silent_gaps():
    spider = ListingsSpider(start_url="https://www.autos.example.de/gebrauchtwagen?seite=1", source="autos")
    response = HtmlResponse(MOVED_URL, body=(PAGES / "results_page_moved_host.html").read_bytes())
    out = list(spider.parse(response))
    assert [r.url for r in out if isinstance(r, scrapy.Request)] == [
        "https://www.autos.example.de/gebrauchtwagen/bmw-320d-touring-12345",
        "https://haendler.www.autos.example.de/gebrauchtwagen/opel-corsa-12348",  # a subdomain is on the site
    ]
    assert [(r.url, r.source, r.reason, r.detail) for r in out if isinstance(r, Reject)] == [
        (MOVED_URL, "autos", "off-site link", "listing link to https://autos.example.de/gebrauchtwagen/vw-golf-vii-12346"),
        (MOVED_URL, "autos", "off-site link",
         "listing link to https://www.partner-autos.example/angebot/audi-a4-avant-12347"),
        (MOVED_URL, "autos", "off-site link", "next page link to https://www.autos-example.de/gebrauchtwagen?seite=3"),
    ]


@pytest.mark.parametrize("url", [
    "https://www.autos.example.de/a", "http://WWW.AUTOS.EXAMPLE.DE:8080/a", "https://m.www.autos.example.de/a",
    "https://autos.example.de/a", "https://www.autos.example.de.evil.example/a", "https://xwww.autos.example.de/a",
    "https:///nohost",
])
def test_the_spider_keeps_exactly_the_links_scrapys_offsite_filter_would_let_through(url):
    spider = ListingsSpider(start_url="https://www.autos.example.de/gebrauchtwagen", source="autos")
    offsite = OffsiteMiddleware.from_crawler(get_crawler(ListingsSpider))
    assert on_site(url, spider.allowed_domains[0]) == offsite.should_follow(scrapy.Request(url), spider)


# --- sitemaps, results pages without links, redirects off the site ------------------------------------------

SITEMAP_SITE = "https://cars.example"


def _sitemap_spider() -> ListingsSpider:
    return ListingsSpider(sitemap_urls=f'["{SITEMAP_SITE}/sitemap.xml"]', source="cars")


def test_a_sitemap_index_asks_for_its_sitemaps_with_the_size_limit():
    spider = _sitemap_spider()
    body = (b"<sitemapindex><sitemap><loc>https://cars.example/s1.xml</loc></sitemap>"
            b"<sitemap><loc>https://elsewhere.example/s2.xml</loc></sitemap></sitemapindex>")
    out = list(spider.parse_sitemap(XmlResponse(f"{SITEMAP_SITE}/sitemap.xml", body=body)))
    request, reject = out
    assert (request.url, request.callback, request.meta["sitemap"]) == (f"{SITEMAP_SITE}/s1.xml",
                                                                        spider.parse_sitemap, True)
    assert request.meta["download_maxsize"] == spider.sitemap_max_size
    assert (reject.reason, reject.detail) == ("off-site link", "sitemap link to https://elsewhere.example/s2.xml")


def test_a_urlsets_pages_are_read_as_listings_at_their_crawl_address():
    spider = _sitemap_spider()
    body = b"<urlset><url><loc>https://cars.example/car/1?utm_source=feed#top</loc></url></urlset>"
    [request] = spider.parse_sitemap(XmlResponse(f"{SITEMAP_SITE}/sitemap.xml", body=body))
    assert (request.url, request.callback) == (f"{SITEMAP_SITE}/car/1", spider.parse_listing)
    assert not request.dont_filter, "the duplicate filter sees every listing request"
    assert spider.discovery == {"result_pages": 0, "sitemaps": 1, "sitemap_links": 1, "sitemap_links_skipped": 0}


def test_sitemap_patterns_choose_the_listings_and_sitemaps_read():
    patterns = {"SITEMAP_LISTING_PATTERN": r"/car/\d+$", "SITEMAP_FOLLOW_PATTERN": r"cars\.xml"}
    crawler = get_crawler(ListingsSpider, patterns)
    spider = ListingsSpider.from_crawler(crawler, sitemap_urls=f'["{SITEMAP_SITE}/sitemap.xml"]', source="cars")
    urlset = b"<urlset><url><loc>/car/1</loc></url><url><loc>/finance</loc></url><url><loc>/</loc></url></urlset>"
    index = (b"<sitemapindex><sitemap><loc>/cars.xml</loc></sitemap>"
             b"<sitemap><loc>/news.xml</loc></sitemap></sitemapindex>")
    out = [*spider.parse_sitemap(XmlResponse(f"{SITEMAP_SITE}/a.xml", body=urlset)),
           *spider.parse_sitemap(XmlResponse(f"{SITEMAP_SITE}/b.xml", body=index))]
    assert [request.url for request in out] == [f"{SITEMAP_SITE}/car/1", f"{SITEMAP_SITE}/cars.xml"]
    assert spider.discovery["sitemap_links_skipped"] == 2


def test_robots_txt_sitemaps_are_read_whatever_the_follow_pattern():
    crawler = get_crawler(ListingsSpider, {"SITEMAP_FOLLOW_PATTERN": r"/cars\.xml"})
    spider = ListingsSpider.from_crawler(crawler, sitemap_urls=f'["{SITEMAP_SITE}/robots.txt"]', source="cars")
    robots = b"User-agent: *\nSitemap: /sitemap_index.xml\n"
    index = (b"<sitemapindex><sitemap><loc>/cars.xml</loc></sitemap>"
             b"<sitemap><loc>/news.xml</loc></sitemap></sitemapindex>")
    out = [*spider.parse_sitemap(TextResponse(f"{SITEMAP_SITE}/robots.txt", body=robots)),
           *spider.parse_sitemap(XmlResponse(f"{SITEMAP_SITE}/sitemap_index.xml", body=index))]
    assert [request.url for request in out] == [f"{SITEMAP_SITE}/sitemap_index.xml", f"{SITEMAP_SITE}/cars.xml"]
    assert spider.discovery["sitemaps_skipped"] == 1


def test_a_sitemap_pattern_that_is_no_regular_expression_stops_the_crawl_naming_it():
    with pytest.raises(ValueError, match="SITEMAP_LISTING_PATTERN is not a regular expression"):
        ListingsSpider.from_crawler(get_crawler(ListingsSpider, {"SITEMAP_LISTING_PATTERN": "(unclosed"}),
                                    start_url=f"{SITEMAP_SITE}/used", source="cars")


def test_an_unreadable_sitemap_is_a_reject_with_the_reason():
    [reject] = _sitemap_spider().parse_sitemap(HtmlResponse(f"{SITEMAP_SITE}/sitemap.xml", body=b"<html></html>"))
    assert (reject.url, reject.reason) == (f"{SITEMAP_SITE}/sitemap.xml", "invalid sitemap")


def test_a_results_page_without_listing_links_is_a_reject():
    spider = ListingsSpider(start_url=f"{SITEMAP_SITE}/used", source="cars")
    [reject] = spider.parse(HtmlResponse(f"{SITEMAP_SITE}/used", body=b"<html><body>No cars</body></html>"))
    assert (reject.reason, reject.detail) == (
        "no listing links", "no ItemList data and no link matching 'a.listing-link' on the results page")


@pytest.mark.parametrize(("status", "location", "off_site"), [
    (301, "https://partner.example/car/1", "https://partner.example/car/1"),
    (302, "//partner.example/car/1", "https://partner.example/car/1"),
    (301, "/car/1-new", None),
    (308, "https://m.cars.example/car/1", None),  # a subdomain is on the site
    (200, "https://partner.example/car/1", None),  # not a redirect
])
def test_a_redirect_off_the_allowed_domains_fails_the_request_naming_the_target(status, location, off_site):
    crawler = get_crawler(ListingsSpider)
    crawler.spider = ListingsSpider(start_url=f"{SITEMAP_SITE}/used", source="cars")
    middleware = OffsiteRedirectMiddleware.from_crawler(crawler)
    request = scrapy.Request(f"{SITEMAP_SITE}/car/1")
    response = HtmlResponse(request.url, status=status, headers={"Location": location}, request=request)
    if off_site is None:
        assert middleware.process_response(request, response) is response
    else:
        with pytest.raises(OffsiteRedirect) as raised:
            middleware.process_response(request, response)
        assert raised.value.target == off_site


@pytest.mark.parametrize(("refresh", "off_site"), [
    ('0; url=https://partner.example/car/1', "https://partner.example/car/1"),
    ('0; url=/car/1-new', None),
    ('600; url=https://partner.example/car/1', None),  # too slow to be followed (METAREFRESH_MAXDELAY)
])
def test_a_meta_refresh_off_the_allowed_domains_fails_the_request_too(refresh, off_site):
    crawler = get_crawler(ListingsSpider)
    crawler.spider = ListingsSpider(start_url=f"{SITEMAP_SITE}/used", source="cars")
    middleware = OffsiteMetaRefreshMiddleware.from_crawler(crawler)
    request = scrapy.Request(f"{SITEMAP_SITE}/car/1")
    body = f'<html><head><meta http-equiv="refresh" content="{refresh}"></head></html>'.encode()
    response = HtmlResponse(request.url, body=body, request=request)
    if off_site is None:
        assert middleware.process_response(request, response) is response
    else:
        with pytest.raises(OffsiteRedirect) as raised:
            middleware.process_response(request, response)
        assert raised.value.target == off_site
