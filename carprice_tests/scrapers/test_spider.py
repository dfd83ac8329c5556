"""The spider's arguments (a source becomes a folder name, so only plain names are taken), and links it follows."""

from __future__ import annotations

import pytest
import scrapy
from scrapy.downloadermiddlewares.offsite import OffsiteMiddleware
from scrapy.http import HtmlResponse
from scrapy.utils.test import get_crawler

from carprice_tests.conftest import PAGES
from scrapers.items import Reject
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
