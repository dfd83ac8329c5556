"""Crawl throughput of the local marketplace beside `scrapy bench`, measured in the same run.

    .venv/bin/python benchmarks/crawl_throughput.py [--listings 5000]

Prints pages/s of each and their ratio (target: carprice / scrapy bench >= 0.8). `scrapy bench`
runs before and after the carprice crawl and the two are averaged, to even out machine noise.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from datetime import datetime
from pathlib import Path

from carprice.config import EMBEDDED_SOURCE
from carprice.market.server import running_marketplace
from carprice.scraping.crawl import crawl_source


def scrapy_bench_pages_per_s() -> float:
    """Pages/s of Scrapy's own benchmark (its local link-following server and spider, 10 s)."""
    proc = subprocess.run([str(Path(sys.executable).with_name("scrapy")), "bench"], capture_output=True, text=True,
                          timeout=300, cwd=tempfile.gettempdir())
    log = proc.stderr
    pages = re.search(r"'response_received_count': (\d+)", log)
    seconds = re.search(r"'elapsed_time_seconds': ([\d.]+)", log)
    if proc.returncode != 0 or not pages or not seconds:
        raise RuntimeError(f"scrapy bench failed:\n{log[-2000:]}")
    return int(pages.group(1)) / float(seconds.group(1))


def carprice_pages_per_s(listings: int) -> tuple[float, int]:
    """Pages/s of the listings spider crawling the simulated marketplace, full pipeline included."""
    with tempfile.TemporaryDirectory() as landing:
        with running_marketplace(seed=7, day=0, listings=listings) as base:
            result = crawl_source(EMBEDDED_SOURCE, Path(landing), start_url=f"{base}/cars?page=1",
                                  timeout_s=1800)
        manifest = result.batch.manifest
        seconds = (datetime.fromisoformat(manifest["finished_at"])
                   - datetime.fromisoformat(manifest["started_at"])).total_seconds()
        pages = manifest["counts"]["pages"]
    return pages / seconds, pages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listings", type=int, default=5000)
    args = parser.parse_args()
    before = scrapy_bench_pages_per_s()
    ours, pages = carprice_pages_per_s(args.listings)
    after = scrapy_bench_pages_per_s()
    baseline = (before + after) / 2
    print(f"scrapy bench           {baseline:8.1f} pages/s  (runs: {before:.1f}, {after:.1f})")
    print(f"carprice crawl         {ours:8.1f} pages/s  ({pages} pages, {args.listings} listings, "
          "parse + normalize + validate + land)")
    print(f"ratio carprice/bench   {ours / baseline:8.2f}   (target >= 0.8)")


if __name__ == "__main__":
    main()
