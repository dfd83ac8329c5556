"""Validation time of a large batch as a ratio to the time of ingesting it, measured in the same run.

    .venv/bin/python benchmarks/validation_speed.py [--listings 100000]

Lands two consecutive days of a simulated market of ``--listings`` listings through the spider's own
parsing, normalization and batch writer (pages rendered and parsed in process, without HTTP, to keep
the benchmark short), ingests the first and validates it (it becomes the reference), then times the
second day's ingest (landed file -> DuckDB) and validation (profile, five checks, verdict, reference
refresh). Target: validation <= 0.5x ingest.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

from carprice.config import ValidationConfig
from carprice.ingest.landing import read_batch
from carprice.ingest.store import ingest_batch
from carprice.market.generator import Market, MarketConfig
from carprice.market.pages import detail_page
from carprice.validation.admission import validate_batch
from carprice.warehouse import Warehouse
from scrapers.batch_writer import BatchWriter
from scrapers.items import Reject
from scrapers.parsing import parse_listing_page
from scrapers.pipelines import listing_problem, normalize_listing


def land_day(market: Market, day: int, landing: Path, base_url: str = "http://127.0.0.1:8765") -> Path:
    """Render and parse every listing of ``day`` as the spider would, and land them as one batch."""
    writer = BatchWriter(landing, "automarkt")
    scraped_at = market.date_of(day).isoformat() + "T12:00:00+00:00"
    for listing_id in market.active_ids(day):
        listing = market.listing(int(listing_id))
        item = parse_listing_page(detail_page(market, listing, day), base_url + listing.path, "automarkt", scraped_at)
        if isinstance(item, Reject):
            writer.add_reject(asdict(item))
            continue
        item = normalize_listing(item)
        problem = listing_problem(item)
        if problem:
            writer.add_reject(asdict(Reject(url=item.url, source="automarkt", scraped_at=scraped_at, reason=problem)))
        else:
            writer.add_listing(asdict(item))
    return writer.finish(start_url=base_url, spider="listings", finish_reason="finished", counts={"pages": 0})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listings", type=int, default=100_000)
    args = parser.parse_args()
    market = Market(MarketConfig.for_active_listings(args.listings, seed=7))
    cfg = ValidationConfig()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        started = time.perf_counter()
        reference, batch = (read_batch(land_day(market, day, root / "landing")) for day in (0, 1))
        landing_s = time.perf_counter() - started
        wh = Warehouse(root / "warehouse.duckdb")
        ingest_batch(wh, reference)
        validate_batch(wh, reference, cfg)

        started = time.perf_counter()
        counts = ingest_batch(wh, batch)
        ingest_s = time.perf_counter() - started
        started = time.perf_counter()
        verdict = validate_batch(wh, batch, cfg)
        validate_s = time.perf_counter() - started
    print(f"batch                {counts['listings']} listings, {counts['rejects']} rejects "
          f"(landing two days took {landing_s:.0f} s)")
    print(f"ingest (baseline)    {ingest_s:8.2f} s")
    print(f"validation           {validate_s:8.2f} s   verdict: {verdict.status}")
    print(f"ratio validate/ingest {validate_s / ingest_s:7.2f}   (target <= 0.5)")


if __name__ == "__main__":
    main()
