"""A second, differently built site configured only through sources.toml: checked, then crawled by its schedule.

    .venv/bin/python benchmarks/sources.py [--listings 2000]

The site is the sitemap-only British dealer site of the tests (carprice_tests/scraping/sitemapsite.py: no result
pages, a sitemap index naming a plain and a gzipped sitemap, cars as microdata, JSON-LD @graph or plain JSON-LD,
prices in pounds and some in dollars, odometers in miles often without a unit), served in its own process. The
installation's sources.toml is written by hand (the embedded marketplace disabled, the site on a 07:00 schedule);
`carprice sources check` reads a few pages, then `carprice run` ticks the site's own crawl schedule and processes
its batch. Prints listings found, pages crawled, rejects by reason, and the crawl's pages/s beside `scrapy bench`
run before and after it (their mean is the baseline).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from crawl_throughput import scrapy_bench_pages_per_s

ROOT = Path(__file__).resolve().parent.parent
CARPRICE = [sys.executable, "-m", "carprice.cli"]

SOURCES_TOML = """\
[sources.automarkt]
start_urls = ["embedded"]
enabled = false

[sources.britcars]
sitemap_urls = ["{url}/robots.txt"]
currency = "GBP"
distance_unit = "mi"
concurrency = 16
delay_s = 0
schedule = "0 7 * * *"
sitemap_pattern = "/used-cars/"

[sources.britcars.scrapy_settings]
AUTOTHROTTLE_START_DELAY = 0
AUTOTHROTTLE_TARGET_CONCURRENCY = 16
"""


def start_site(listings: int) -> tuple[subprocess.Popen, str, int]:
    proc = subprocess.Popen([sys.executable, "-m", "carprice_tests.scraping.sitemapsite", "--port", "0",
                             "--listings", str(listings)], cwd=ROOT, stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    line = proc.stdout.readline()
    found = re.search(r"serving (http://\S+) \((\d+) adverts", line)
    if not found:
        proc.kill()
        raise RuntimeError(f"the site did not start: {line!r}")
    return proc, found.group(1), int(found.group(2))


def carprice(*args: str, data: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}
    return subprocess.run([*CARPRICE, *args, "--data-dir", str(data)], cwd=ROOT, capture_output=True, text=True,
                          env=env, timeout=1800)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listings", type=int, default=2000)
    args = parser.parse_args()
    site, url, adverts = start_site(args.listings)
    try:
        with tempfile.TemporaryDirectory(prefix="carprice-sources-") as tmp:
            data = Path(tmp) / "data"
            data.mkdir()
            (data / "sources.toml").write_text(SOURCES_TOML.format(url=url), encoding="utf-8")
            listed = carprice("sources", "list", data=data)
            print(listed.stdout.strip())
            started = time.perf_counter()
            check = carprice("sources", "check", "britcars", data=data)
            print(f"\n$ carprice sources check britcars   ({time.perf_counter() - started:.1f} s)\n"
                  + check.stdout.strip())
            before = scrapy_bench_pages_per_s()
            started = time.perf_counter()
            run = carprice("run", "--json", data=data)
            run_seconds = time.perf_counter() - started
            after = scrapy_bench_pages_per_s()
            if run.returncode not in (0, 3):
                raise RuntimeError(f"carprice run failed ({run.returncode}):\n{run.stderr[-3000:]}")
            day = json.loads(run.stdout)
            [manifest_path] = (data / "landing" / "britcars").glob("*/manifest.json")
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    finally:
        site.terminate()
        site.wait(timeout=10)
    crawl_s = (datetime.fromisoformat(manifest["finished_at"])
               - datetime.fromisoformat(manifest["started_at"])).total_seconds()
    counts = manifest["counts"]
    baseline = (before + after) / 2
    ticked = [line for line in run.stderr.splitlines() if "schedule crawl_" in line]
    print(f"\n$ carprice run   ({run_seconds:.0f} s; the schedule ticked: {'; '.join(t.strip() for t in ticked)})")
    print(f"adverts on the site     {adverts}")
    print(f"listings landed         {counts['listings']}")
    print(f"pages crawled           {counts['pages']}  (discovery: {json.dumps(manifest.get('discovery', {}))})")
    print(f"rejects                 {counts['rejects']}  {json.dumps(manifest.get('reject_reasons', {}))}")
    print(f"batch status            {day['status']}  ({', '.join(day['failed_checks']) or 'no failed check'})")
    print(f"scrapy bench            {baseline:8.1f} pages/s  (runs: {before:.1f}, {after:.1f})")
    print(f"carprice crawl          {counts['pages'] / crawl_s:8.1f} pages/s  ({counts['pages']} pages in "
          f"{crawl_s:.1f} s, parse + normalize + validate + land)")
    print(f"ratio carprice/bench    {counts['pages'] / crawl_s / baseline:8.2f}")


if __name__ == "__main__":
    main()
