"""`carprice sources check`: crawl a few pages of a source into a scratch folder and say what the spider read.

A person tunes a new source's selectors and defaults with it before its first real crawl: how many listings
and rejects a handful of pages gave, which fields the listings have (and how often), the rejects' reasons with
an example each, and a few listings as read. Nothing lands in the installation's landing zone.
"""

from __future__ import annotations

import json
import tempfile
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

from carprice.config import SourceConfig
from carprice.ingest.landing import Batch
from carprice.scraping.crawl import crawl_source

# The fields a listing should have, in the order a person reads them; share of listings that have each.
CHECKED_FIELDS = ("make", "model", "model_year", "first_registration", "mileage_km", "fuel", "transmission", "body",
                  "power_kw", "price", "currency", "seller_type", "region", "listed_at", "site_listing_id")
EXAMPLE_FIELDS = ("make", "model", "model_year", "mileage_km", "price", "currency", "url")


@dataclass
class SourceCheck:
    """What a short crawl of a source gave."""

    source: str
    pages: int
    seconds: float
    finish_reason: str
    listings: list[dict] = field(default_factory=list)
    rejects: list[dict] = field(default_factory=list)

    @property
    def field_shares(self) -> dict[str, float]:
        n = len(self.listings) or 1
        return {f: sum(row.get(f) not in (None, "") for row in self.listings) / n for f in CHECKED_FIELDS}

    @property
    def reject_reasons(self) -> list[tuple[str, int, dict]]:
        """(reason, count, an example reject), most common first."""
        counts = Counter(r.get("reason", "?") for r in self.rejects)
        example = {}
        for r in self.rejects:
            example.setdefault(r.get("reason", "?"), r)
        return [(reason, n, example[reason]) for reason, n in counts.most_common()]

    def render(self, examples: int = 3) -> str:
        lines = [f"source {self.source}: {self.pages} pages in {self.seconds:.1f} s (finish: {self.finish_reason})",
                 f"  listings read    {len(self.listings)}",
                 f"  rejects          {len(self.rejects)}"]
        if self.listings:
            lines.append("  fields present   (share of listings)")
            for name, share in self.field_shares.items():
                flag = "" if share >= 0.5 else "   <- rarely found: check the page's data or the source's defaults"
                lines.append(f"    {name:<18} {share:>4.0%}{flag}")
            lines.append("  first listings")
            for row in self.listings[:examples]:
                lines.append("    " + ", ".join(f"{k}={row.get(k)}" for k in EXAMPLE_FIELDS))
        if self.rejects:
            lines.append("  reject reasons")
            for reason, n, example in self.reject_reasons:
                lines.append(f"    {n:>5}  {reason}: e.g. {example.get('url')}"
                             + (f" ({example['detail'][:160]})" if example.get("detail") else ""))
        if not self.listings:
            lines.append("  NO LISTING: the pages carry no schema.org Car/Vehicle offer the spider can read, or the "
                         "links to them were not found (link_css, next_css, sitemap_urls)")
        return "\n".join(lines)


def summarize(batch: Batch, seconds: float) -> SourceCheck:
    """The check of a landed batch."""
    manifest = batch.manifest
    return SourceCheck(source=manifest.get("source", "?"), pages=manifest.get("counts", {}).get("pages", 0),
                       seconds=seconds, finish_reason=str(manifest.get("finish_reason")),
                       listings=_lines(batch.listings_file), rejects=_lines(batch.rejects_file))


def check_source(source: SourceConfig, *, pages: int = 20, start_url: str | None = None,
                 timeout_s: float = 300) -> SourceCheck:
    """Crawl at most ``pages`` pages of ``source`` (two result pages) into a scratch folder and summarize them."""
    short = replace(source, scrapy_settings={**source.scrapy_settings, "CLOSESPIDER_PAGECOUNT": pages})
    with tempfile.TemporaryDirectory(prefix="carprice-check-") as tmp:
        result = crawl_source(short, Path(tmp), start_url=start_url, timeout_s=timeout_s, max_pages=2)
        return summarize(result.batch, result.seconds)


def _lines(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]
