"""Discovery, parsing tier: the pages and sitemaps a sitemap names, and the one address a link is fetched at."""

from __future__ import annotations

import gzip

import pytest

from scrapers.parsing import SitemapLinks, UnreadablePage, crawl_url, sitemap_links

SITE = "https://cars.example"
URLSET = (b'<?xml version="1.0" encoding="UTF-8"?>\n'
          b'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
          b"<url><loc>https://cars.example/car/1</loc><lastmod>2026-01-02</lastmod></url>"
          b"<url><loc> https://cars.example/car/2 </loc></url>"
          b"<url><loc>https://cars.example/car/1</loc></url>"
          b"<url><lastmod>2026-01-02</lastmod></url></urlset>")
INDEX = (b'<?xml version="1.0" encoding="UTF-8"?>\n'
         b'<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
         b"<sitemap><loc>https://cars.example/sitemap-1.xml</loc></sitemap>"
         b"<sitemap><loc>/sitemap-2.xml.gz</loc></sitemap></sitemapindex>")


def test_a_urlset_names_its_pages_once_each_in_order():
    assert sitemap_links(URLSET, f"{SITE}/sitemap.xml") == SitemapLinks(
        "urlset", pages=("https://cars.example/car/1", "https://cars.example/car/2"))


def test_a_sitemap_index_names_its_sitemaps_relative_ones_resolved():
    assert sitemap_links(INDEX, f"{SITE}/sitemap.xml") == SitemapLinks(
        "sitemapindex", sitemaps=("https://cars.example/sitemap-1.xml", "https://cars.example/sitemap-2.xml.gz"))


def test_a_gzipped_sitemap_reads_like_the_plain_one():
    assert sitemap_links(gzip.compress(URLSET), f"{SITE}/sitemap.xml.gz") == sitemap_links(URLSET, f"{SITE}/s.xml")


def test_robots_txt_names_sitemaps():
    robots = b"User-agent: *\nDisallow: /account/\nSitemap: /sitemap.xml\nsitemap: https://cdn.cars.example/s2.xml\n"
    assert sitemap_links(robots, f"{SITE}/robots.txt") == SitemapLinks(
        "robots.txt", sitemaps=("https://cars.example/sitemap.xml", "https://cdn.cars.example/s2.xml"))


@pytest.mark.parametrize(("body", "url", "reason", "detail"), [
    (b"User-agent: *\nAllow: /\n", f"{SITE}/robots.txt", "empty sitemap", "robots.txt has no Sitemap: line"),
    (b"<html><body>Welcome</body></html>", f"{SITE}/sitemap.xml", "invalid sitemap",
     "root element <html>, not <urlset> or <sitemapindex>"),
    (b"Service temporarily unavailable", f"{SITE}/sitemap.xml", "invalid sitemap",
     "not XML: starts with b'Service temporarily unavailable'"),
    (b"", f"{SITE}/sitemap.xml", "invalid sitemap", "not XML: starts with b''"),
    (b'{"urls": ["/car/1"]}', f"{SITE}/sitemap.xml", "invalid sitemap", "not XML: starts with b'{\"urls\""),
    (b'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"></urlset>', f"{SITE}/sitemap.xml",
     "empty sitemap", "a <urlset> naming no <loc>"),
    (b"\x1f\x8b\x08\x00broken", f"{SITE}/sitemap.xml.gz", "invalid sitemap", "broken gzip data"),
])
def test_what_is_not_a_sitemap_says_why(body, url, reason, detail):
    with pytest.raises(UnreadablePage) as raised:
        sitemap_links(body, url)
    assert raised.value.reason == reason and raised.value.detail.startswith(detail)


def test_a_sitemap_over_the_size_limit_is_refused_plain_or_once_decompressed():
    huge = URLSET.replace(b"</urlset>", b"<url><loc>https://cars.example/car/3</loc></url>" * 2000 + b"</urlset>")
    assert len(sitemap_links(huge, f"{SITE}/s.xml", max_size=0).pages) == 3, "0: no limit"
    for body in (huge, gzip.compress(huge)):
        with pytest.raises(UnreadablePage) as raised:
            sitemap_links(body, f"{SITE}/s.xml", max_size=50_000)
        assert raised.value.reason == "sitemap too large" and "50000" in raised.value.detail
    assert len(gzip.compress(huge)) < 50_000, "the compressed size is not what counts"


def test_an_xml_bomb_is_not_expanded():
    bomb = (b'<?xml version="1.0"?><!DOCTYPE u [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>'
            b'<urlset><url><loc>https://cars.example/&b;</loc></url></urlset>')
    pages = sitemap_links(bomb, f"{SITE}/s.xml").pages
    assert all(len(page) < 100 for page in pages)


@pytest.mark.parametrize(("url", "expected"), [
    ("https://cars.example/car/1#photos", "https://cars.example/car/1"),
    ("https://cars.example/car/1?utm_source=news&utm_medium=mail", "https://cars.example/car/1"),
    ("https://cars.example/car/1?id=7&gclid=abc&fbclid=x", "https://cars.example/car/1?id=7"),
    ("https://cars.example/car/1;jsessionid=0A1B2C", "https://cars.example/car/1"),
    ("https://cars.example/search?page=2&sort=price%20asc", "https://cars.example/search?page=2&sort=price%20asc"),
    ("https://cars.example/car/1?ref=home", "https://cars.example/car/1?ref=home"),  # may mean something: kept
])
def test_a_link_is_requested_without_fragment_and_tracking_parameters(url, expected):
    assert crawl_url(url) == expected
