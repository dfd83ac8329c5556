"""The sources file: what it may say, the errors that name its lines, and adding a source without losing a word."""

from __future__ import annotations

import json

import pytest

from carprice.config import EMBEDDED_SOURCE, SourceConfig
from carprice.scraping.crawl import crawl_command
from carprice.sources import SourcesError, add_source, default_text, load_sources, parse_sources, write_default

GOOD = """\
# our sites
[sources.usedcars]
start_urls = ["https://www.usedcars.example/search?page=1"]
link_css = "a.result-title"
next_css = "a.more"
schedule = "0 5 * * 1-5"
currency = "USD"
distance_unit = "mi"
concurrency = 2
delay_s = 1.5

[sources.usedcars.scrapy_settings]
DOWNLOAD_TIMEOUT = 60

[sources.dealer]   # sitemap only, crawled on demand
sitemap_urls = ["https://dealer.example/sitemap.xml"]
sitemap_pattern = "/used-cars/"
enabled = false
"""


def test_no_file_means_the_embedded_marketplace(tmp_path):
    assert load_sources(tmp_path / "sources.toml") == {"automarkt": EMBEDDED_SOURCE}


def test_the_default_file_reads_back_as_the_embedded_marketplace(tmp_path):
    path = tmp_path / "sources.toml"
    assert write_default(path) and not write_default(path)
    assert load_sources(path) == {"automarkt": EMBEDDED_SOURCE}
    assert default_text().startswith("# The sites carprice crawls")


def test_a_file_with_two_real_sites():
    sources = parse_sources(GOOD)
    cars = sources["usedcars"]
    assert cars.start_urls == ("https://www.usedcars.example/search?page=1",) and cars.sitemap_urls == ()
    assert (cars.link_css, cars.next_css, cars.schedule) == ("a.result-title", "a.more", "0 5 * * 1-5")
    assert (cars.currency, cars.distance_unit, cars.concurrency, cars.delay_s) == ("USD", "mi", 2, 1.5)
    assert cars.crawl_settings()["CONCURRENT_REQUESTS_PER_DOMAIN"] == 2
    assert cars.crawl_settings()["DOWNLOAD_TIMEOUT"] == 60 and cars.crawl_settings()["ROBOTSTXT_OBEY"] is True
    dealer = sources["dealer"]
    assert dealer.sitemap_urls == ("https://dealer.example/sitemap.xml",)
    assert dealer.crawl_settings()["SITEMAP_LISTING_PATTERN"] == "/used-cars/"
    assert not dealer.enabled and dealer.schedule is None and dealer.reviewed_reference is None


@pytest.mark.parametrize(("text", "message"), [
    ('[sources.a]\nstart_urls = ["https://a.example/"]\nshedule = "0 5 * * *"\n',
     r"sources\.toml:3: sources\.a\.shedule: unknown key; did you mean 'schedule'\?"),
    ('[sources.a]\nstart_urls = ["https://a.example/"]\nschedule = 0 5 * * *\n',
     r"sources\.toml: not valid TOML: .*at line 3"),
    ('[sources.a]\nstart_urls = ["https://a.example/"]\nschedule = "at dawn"\n',
     r"sources\.toml:3: .*'at dawn' is not a cron schedule"),
    ('[sources.a]\nstart_urls = ["https://a.example/"]\n\ncurrency = "dollars"\n',
     r"sources\.toml:4: .*not an ISO currency code"),
    ('[sources.a]\nstart_urls = ["ftp://a.example/"]\n', r"sources\.toml:2: .*not an http\(s\) URL"),
    ('[sources.a]\nstart_urls = ["https://a.example/"]\nlink_css = "a[["\n', r"sources\.toml:3: .*not a CSS selector"),
    ('[sources.a]\nstart_urls = ["https://a.example/"]\nnext_css = "a.more::text"\n', r":3: .*selector of links"),
    ('[sources.a]\nsitemap_urls = ["https://a.example/s.xml"]\n[sources.a.scrapy_settings]\n'
     'SITEMAP_FOLLOW_PATTERN = "("\n', r"SITEMAP_FOLLOW_PATTERN '\(' is not a regular expression"),
    ('[sources.a]\nsitemap_urls = ["https://a.example/s.xml"]\n[sources.a.scrapy_settings]\n'
     'SITEMAP_MAX_SIZE = "50MB"\n', r"SITEMAP_MAX_SIZE must be a whole number of bytes"),
    ('[sources.a]\nschedule = "0 5 * * *"\n', r"sources\.toml:1: sources\.a: give start_urls .* or sitemap_urls"),
    ('[sources.a]\nstart_urls = ["embedded", "https://a.example/"]\n', r"embedded marketplace\) is a source of its"),
    ('[sources.a]\nstart_urls = ["https://a.example/"]\nconcurrency = 0\n', r":3: .*from 1 to 64"),
    ('[sources.a]\nsitemap_urls = ["https://a.example/s.xml"]\nsitemap_pattern = "(cars"\n', r":3: .*not a regular"),
    ('[sources.a]\nstart_urls = ["https://a.example/"]\nenabled = "yes"\n', r":3: .*must be true or false"),
    ('[sources.a]\nstart_urls = ["https://a.example/"]\ndistance_unit = "miles"\n', r":3: .*not one of km, mi"),
    ('[sources.a]\nstart_urls = ["https://a.example/"]\nuser_agent = "mybot"\n', r":3: .*must name a contact"),
    ('[sources.a]\nstart_urls = ["https://a.example/"]\n[sources.a.scrapy_settings]\nLANDING_DIR = "/tmp"\n',
     r"LANDING_DIR is set by carprice"),
    ('[sources.a]\nstart_urls = ["https://a.example/"]\n[sources.a.scrapy_settings]\nDOWNLOADER_MIDDLEWARES = "{}"\n',
     r"DOWNLOADER_MIDDLEWARES is set by carprice"),
    ('[sources."bad name"]\nstart_urls = ["https://a.example/"]\n', r"sources\.bad name: a source name is"),
    ('[sources.used-cars]\nstart_urls = ["https://a.example/"]\n', r"sources\.toml:1: sources\.used-cars: a source"),
    ('sources = 3\n', r"sources = 3|must be a table|no source"),
    ('[site]\nstart_urls = ["https://a.example/"]\n', r"sources\.toml:1: unknown top-level key 'site'"),
    ("", r"no source: add a \[sources\.NAME\] table"),
])
def test_a_bad_file_is_an_error_naming_the_line(text, message):
    with pytest.raises(SourcesError, match=message):
        parse_sources(text)


def test_an_unreadable_file_is_a_sources_error(tmp_path):
    path = tmp_path / "sources.toml"
    path.write_bytes(b"\xff\xfe[sources")
    with pytest.raises(SourcesError, match="cannot be read"):
        load_sources(path)


def test_adding_a_source_keeps_the_file_and_its_comments(tmp_path):
    path = tmp_path / "sources.toml"
    path.write_text(GOOD, encoding="utf-8")
    add_source(path, SourceConfig(name="uk", sitemap_urls=("https://uk.example/sitemap.xml",), currency="GBP",
                                  distance_unit="mi", schedule="30 4 * * *"))
    text = path.read_text(encoding="utf-8")
    assert text.startswith(GOOD.rstrip("\n")) and "# sitemap only, crawled on demand" in text
    sources = load_sources(path)
    assert list(sources) == ["usedcars", "dealer", "uk"]
    assert (sources["uk"].currency, sources["uk"].schedule) == ("GBP", "30 4 * * *")


def test_a_failed_add_changes_nothing(tmp_path):
    path = tmp_path / "sources.toml"
    path.write_text(GOOD, encoding="utf-8")
    with pytest.raises(SourcesError, match="exists already"):
        add_source(path, SourceConfig(name="dealer", start_urls=("https://dealer.example/",)))
    with pytest.raises(SourcesError, match="not an ISO currency code"):
        add_source(path, SourceConfig(name="new", start_urls=("https://new.example/",), currency="euro"))
    assert path.read_text(encoding="utf-8") == GOOD
    assert not list(tmp_path.glob(".*.tmp"))


def test_adding_to_an_installation_without_a_file_keeps_the_embedded_marketplace(tmp_path):
    path = tmp_path / "sources.toml"
    add_source(path, SourceConfig(name="usedcars", start_urls=("https://usedcars.example/",)))
    assert list(load_sources(path)) == ["automarkt", "usedcars"]
    assert load_sources(path)["automarkt"] == EMBEDDED_SOURCE


def test_the_crawl_command_hands_the_source_to_the_spider(tmp_path):
    source = parse_sources(GOOD)["usedcars"]
    cmd = crawl_command(source, source.start_urls, tmp_path, "usedcars-1", max_pages=2)
    args = dict(cmd[i + 1].split("=", 1) for i, part in enumerate(cmd) if part == "-a")
    settings = dict(cmd[i + 1].split("=", 1) for i, part in enumerate(cmd) if part == "-s")
    assert json.loads(args["start_urls"]) == ["https://www.usedcars.example/search?page=1"]
    assert (args["default_currency"], args["distance_unit"], args["max_pages"]) == ("USD", "mi", "2")
    assert (args["link_css"], args["next_css"], args["source"]) == ("a.result-title", "a.more", "usedcars")
    assert settings["DOWNLOAD_DELAY"] == "1.5" and settings["CONCURRENT_REQUESTS_PER_DOMAIN"] == "2"
    assert settings["LANDING_DIR"] == str(tmp_path) and settings["DOWNLOAD_TIMEOUT"] == "60"
