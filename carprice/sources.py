"""The sites an installation crawls: ``sources.toml`` in its data folder, one table per source.

The file is read and checked whole before anything uses it: a syntax error, an unknown key, a value of the
wrong kind or a bad URL, selector or cron schedule is a ``SourcesError`` naming the file and line. Without a
file an installation crawls the embedded marketplace, the file's default entry.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import fields, replace
from pathlib import Path
from urllib.parse import urlsplit

import tomlkit

from carprice.config import EMBEDDED_MARKETPLACE, EMBEDDED_SOURCE, SourceConfig

# A source names folders, partitions and its Dagster schedule (crawl_<name>: letters, digits and '_' only), and
# starts its batch ids (<source>-<time>-<hex>), so it holds no '-'.
SOURCE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")
CURRENCY_CODE = re.compile(r"[A-Z]{3}")
DISTANCE_UNITS = ("km", "mi")
# Settings carprice itself gives every crawl: a source may not change where or how its batch lands.
# DOWNLOADER_MIDDLEWARES too: a source's table would replace the project's, which turn off-site redirects into rejects.
RESERVED_SETTINGS = frozenset({"LANDING_DIR", "BATCH_ID", "ITEM_PIPELINES", "SPIDER_MODULES", "NEWSPIDER_MODULE",
                               "BOT_NAME", "DOWNLOADER_MIDDLEWARES"})

HEADER = """\
# The sites carprice crawls: one [sources.NAME] table each. NAME names the source's batches and partitions.
#
#   start_urls      result pages to walk: rel=next links, ItemList JSON-LD, or link_css/next_css below
#   sitemap_urls    sitemap.xml files (or a robots.txt naming them) that list the listing pages
#   sitemap_pattern a regular expression a sitemap's page must match to be read as a listing (default: all)
#   link_css        listing links on a result page without ItemList data   (default "a.listing-link")
#   next_css        the next results page on a site without rel=next
#   allowed_domains hosts the crawl may visit (default: those of the start and sitemap URLs)
#   concurrency, delay_s, autothrottle, obey_robots, user_agent   politeness (defaults 4, 0.5, true, true, carprice's)
#   schedule        cron (UTC) of the source's crawl schedule; leave out to crawl on demand only
#   currency        ISO code of prices the page gives no currency for; distance_unit: "km" or "mi" likewise
#   enabled         false keeps the source's batches but crawls it no more
#   [sources.NAME.scrapy_settings]   any other Scrapy setting, e.g. DOWNLOAD_TIMEOUT = 60
#
# `carprice sources check NAME` shows what the spider reads from a few of a source's pages.
"""

_LISTS = {"start_urls", "sitemap_urls", "allowed_domains"}
KEYS = tuple(f.name for f in fields(SourceConfig) if f.name not in ("name", "reviewed_reference"))


class SourcesError(ValueError):
    """The sources file cannot be used; the message names the file and, where it can, the line."""


def load_sources(path: Path) -> dict[str, SourceConfig]:
    """The sources of the file at ``path``, by name; the embedded marketplace alone when there is no file."""
    if not path.exists():
        return {EMBEDDED_SOURCE.name: EMBEDDED_SOURCE}
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SourcesError(f"{path}: cannot be read: {exc}") from exc
    return parse_sources(text, path)


def parse_sources(text: str, path: Path | str = "sources.toml") -> dict[str, SourceConfig]:
    """Every source the TOML ``text`` describes, checked; SourcesError names the line of the first problem."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SourcesError(f"{path}: not valid TOML: {exc}") from exc
    where = Locator(text, path)
    unknown = sorted(set(data) - {"sources"})
    if unknown:
        raise SourcesError(f"{where.key(None, unknown[0])}: unknown top-level key {unknown[0]!r}; "
                           "sources are [sources.NAME] tables")
    tables = data.get("sources", {})
    if not isinstance(tables, dict) or not tables:
        raise SourcesError(f"{path}: no source: add a [sources.NAME] table (see `carprice sources add --help`)")
    sources = {}
    for name, table in tables.items():
        if not isinstance(table, dict):
            raise SourcesError(f"{where.key(None, 'sources')}: sources.{name} must be a table ([sources.{name}])")
        sources[name] = source_from_table(name, table, where)
    return sources


def source_from_table(name: str, table: Mapping, where: Locator | None = None) -> SourceConfig:
    """The SourceConfig of one ``[sources.NAME]`` table, every value checked."""
    where = where or Locator("", "sources.toml")

    def fail(key: str | None, message: str) -> SourcesError:
        return SourcesError(f"{where.key(name, key)}: sources.{name}{'.' + key if key else ''}: {message}")

    if not SOURCE_NAME.fullmatch(name):
        raise fail(None, "a source name is a letter, then letters, digits and '_' (at most 64; it names folders, "
                         "partitions and its crawl schedule)")
    unknown = sorted(set(table) - set(KEYS))
    if unknown:
        close = difflib.get_close_matches(unknown[0], KEYS, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise fail(unknown[0], f"unknown key; {hint}a source has {', '.join(KEYS)}")
    values: dict = {}
    for key, value in table.items():
        values[key] = _checked(key, value, fail)
    source = SourceConfig(name=name, **values)
    if not source.start_urls and not source.sitemap_urls:
        raise fail(None, "give start_urls (result pages) or sitemap_urls (sitemaps of listing pages)")
    if source.embedded:
        if source.start_urls != (EMBEDDED_MARKETPLACE,) or source.sitemap_urls:
            raise fail("start_urls", f'"{EMBEDDED_MARKETPLACE}" (the embedded marketplace) is a source of its own: '
                                     "give it alone")
        source = replace(source, reviewed_reference=EMBEDDED_SOURCE.reviewed_reference
                         if name == EMBEDDED_SOURCE.name else None)
    return source


def _checked(key: str, value: object, fail) -> object:
    """``value`` of ``key`` as SourceConfig holds it, or the SourcesError ``fail`` makes."""
    kind = {bool: "true or false", int: "a whole number", float: "a number", str: "a string"}
    if key in _LISTS:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            raise fail(key, "must be a list of strings")
        value = tuple(v.strip() for v in value)
        for v in value:
            if key == "allowed_domains":
                if not re.fullmatch(r"[A-Za-z0-9.-]+", v):
                    raise fail(key, f"{v!r} is not a host name")
            elif v != EMBEDDED_MARKETPLACE and not _is_http_url(v):
                raise fail(key, f"{v!r} is not an http(s) URL with a host")
        if key == "sitemap_urls" and EMBEDDED_MARKETPLACE in value:
            raise fail(key, f'"{EMBEDDED_MARKETPLACE}" belongs in start_urls')
        return value
    if key == "scrapy_settings":
        if not isinstance(value, dict):
            raise fail(key, "must be a table of Scrapy settings")
        for setting, v in value.items():
            if not re.fullmatch(r"[A-Z][A-Z0-9_]*", setting):
                raise fail(key, f"{setting!r} is not a Scrapy setting name (upper case, like DOWNLOAD_TIMEOUT)")
            if setting in RESERVED_SETTINGS:
                raise fail(key, f"{setting} is set by carprice for every crawl")
            if not isinstance(v, (str, int, float, bool)):
                raise fail(key, f"{setting} must be a string, number or boolean")
            if setting in ("SITEMAP_LISTING_PATTERN", "SITEMAP_FOLLOW_PATTERN"):
                try:
                    re.compile(str(v))
                except re.error as exc:
                    raise fail(key, f"{setting} {v!r} is not a regular expression: {exc}") from exc
            if setting == "SITEMAP_MAX_SIZE" and (isinstance(v, bool) or not isinstance(v, int) or v < 0):
                raise fail(key, f"{setting} must be a whole number of bytes (0: no limit)")
        return dict(value)
    if key in ("autothrottle", "obey_robots", "enabled"):
        if not isinstance(value, bool):
            raise fail(key, f"must be {kind[bool]}")
        return value
    if key == "concurrency":
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 64:
            raise fail(key, "must be a whole number from 1 to 64")
        return value
    if key == "delay_s":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 600:
            raise fail(key, "must be a number of seconds from 0 to 600")
        return float(value)
    if not isinstance(value, str):
        raise fail(key, f"must be {kind[str]}")
    value = value.strip()
    if key == "sitemap_pattern":
        try:
            re.compile(value)
        except re.error as exc:
            raise fail(key, f"{value!r} is not a regular expression: {exc}") from exc
        return value
    if key in ("link_css", "next_css"):
        _check_css(value, lambda message: fail(key, message))
        return value
    if key == "user_agent":
        if not re.search(r"https?://|@", value):
            raise fail(key, "must name a contact (a URL or an e-mail address), so a site's operator can reach you")
        return value
    if key == "schedule":
        from dagster._utils.schedules import is_valid_cron_string

        if not is_valid_cron_string(value):
            raise fail(key, f"{value!r} is not a cron schedule like \"0 6 * * *\" (minute hour day month weekday)")
        return value
    if key == "currency":
        if not CURRENCY_CODE.fullmatch(value):
            raise fail(key, f"{value!r} is not an ISO currency code like EUR, USD or GBP")
        return value
    if key == "distance_unit":
        if value not in DISTANCE_UNITS:
            raise fail(key, f"{value!r} is not one of {', '.join(DISTANCE_UNITS)}")
        return value
    raise fail(key, "unexpected")


def _check_css(selector: str, fail) -> None:
    from cssselect import SelectorError
    from parsel.csstranslator import HTMLTranslator

    try:
        # The spider takes each matched link's href (``<selector>::attr(href)``), so a selector that already ends
        # in a pseudo-element (::text, ::attr(...)) is refused here rather than by every results page.
        HTMLTranslator().css_to_xpath(f"{selector}::attr(href)")
    except SelectorError as exc:
        raise fail(f"{selector!r} is not a CSS selector of links (the spider reads their href): {exc}") from exc


def _is_http_url(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.hostname)


class Locator:
    """Line numbers of tables and keys in the file's text, for error messages."""

    def __init__(self, text: str, path: Path | str):
        self.lines = text.splitlines()
        self.path = path

    def key(self, source: str | None, key: str | None) -> str:
        """``path:line`` of ``key`` in ``[sources.<source>]`` (or at the top level), else of the table."""
        table_line, section = None, None
        for number, line in enumerate(self.lines, start=1):
            header = re.match(r"\s*\[+\s*([^\]]+?)\s*\]+", line)
            if header:
                section = header.group(1).replace('"', "").replace("'", "").replace(" ", "")
                if source is not None and section == f"sources.{source}":
                    table_line = number
                continue
            here = section == (f"sources.{source}" if source is not None else None)
            if key and here and re.match(rf"\s*[\"']?{re.escape(key)}[\"']?\s*=", line):
                return f"{self.path}:{number}"
        if source is None and key:
            for number, line in enumerate(self.lines, start=1):
                if re.match(rf"\s*\[+\s*{re.escape(key)}\b", line):
                    return f"{self.path}:{number}"
        return f"{self.path}:{table_line}" if table_line else str(self.path)


def source_table(source: SourceConfig) -> dict:
    """The ``[sources.NAME]`` table of ``source``: the keys that differ from the defaults."""
    defaults = SourceConfig(name=source.name)
    table = {}
    for key in KEYS:
        value = getattr(source, key)
        if value != getattr(defaults, key) or (key in ("start_urls", "schedule") and value):
            table[key] = list(value) if isinstance(value, tuple) else dict(value) if isinstance(value, Mapping) \
                else value
    return table


def default_text() -> str:
    """The sources.toml of a new installation: the embedded marketplace alone."""
    doc = tomlkit.parse(HEADER)
    doc.add("sources", tomlkit.table(is_super_table=True))
    doc["sources"][EMBEDDED_SOURCE.name] = _toml_table(EMBEDDED_SOURCE)
    return tomlkit.dumps(doc)


def _toml_table(source: SourceConfig) -> tomlkit.items.Table:
    table = tomlkit.table()
    for key, value in source_table(source).items():
        if isinstance(value, dict):
            sub = tomlkit.table()
            for k, v in value.items():
                sub[k] = v
            table[key] = sub
        else:
            table[key] = value
    return table


def write_default(path: Path) -> bool:
    """Write the default sources file at ``path`` unless there is one; whether it was written."""
    if path.exists():
        return False
    _write(path, default_text())
    return True


def add_source(path: Path, source: SourceConfig) -> None:
    """Add ``source`` to the file at ``path`` (written with the defaults first if absent), keeping its comments.

    The new file is checked whole before it replaces the old one, so a failed add changes nothing.
    """
    text = path.read_text(encoding="utf-8") if path.exists() else default_text()
    current = parse_sources(text, path)
    if source.name in current:
        raise SourcesError(f"{path}: a source named {source.name!r} exists already")
    source_from_table(source.name, source_table(source), Locator("", path))  # a hand-written table's checks
    doc = tomlkit.parse(text)
    doc["sources"][source.name] = _toml_table(source)
    new_text = tomlkit.dumps(doc)
    parse_sources(new_text, path)
    _write(path, new_text)


def _write(path: Path, text: str) -> None:
    """Replace the file at ``path`` in one step (a crash leaves the old file or the new one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
