"""Run a Scrapy crawl of one source in its own process and return the batch it landed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from carprice.config import EMBEDDED_MARKETPLACE, PROJECT_DIR, SourceConfig
from carprice.ingest.landing import Batch, read_batch
from carprice.processes import run_child
from scrapers.batch_writer import make_batch_id


class CrawlError(RuntimeError):
    """The crawl process failed or landed nothing; carries the end of its log."""


@dataclass(frozen=True)
class CrawlResult:
    batch: Batch
    seconds: float
    log_tail: str


def crawl_command(source: SourceConfig, start_urls: tuple[str, ...], landing_dir: Path, batch_id: str,
                  max_pages: int | None = None) -> list[str]:
    """The ``scrapy crawl`` command line for one source (lists go to the spider as JSON)."""
    spider_args = {"source": source.name, "start_urls": json.dumps(list(start_urls)),
                   "sitemap_urls": json.dumps(list(source.sitemap_urls)), "link_css": source.link_css,
                   "next_css": source.next_css, "allowed_domains": json.dumps(list(source.allowed_domains)),
                   "default_currency": source.currency, "distance_unit": source.distance_unit,
                   "max_pages": max_pages}
    cmd = [sys.executable, "-m", "scrapy", "crawl", "listings",
           "-s", f"LANDING_DIR={landing_dir}", "-s", f"BATCH_ID={batch_id}"]
    for key, value in spider_args.items():
        if value:
            cmd += ["-a", f"{key}={value}"]
    for key, value in source.crawl_settings().items():
        cmd += ["-s", f"{key}={value}"]
    return cmd


def crawl_source(source: SourceConfig, landing_dir: Path, *, start_url: str | None = None, timeout_s: float,
                 max_pages: int | None = None) -> CrawlResult:
    """Crawl ``source`` from ``start_url`` (its configured start and sitemap URLs by default) and return the
    landed batch.

    A source whose address is only known once it runs (the embedded marketplace) is given ``start_url``
    by the caller that started it.
    """
    start_urls = (start_url,) if start_url else source.start_urls
    if EMBEDDED_MARKETPLACE in start_urls:
        raise CrawlError(f"source {source.name} is the embedded marketplace: start it and pass its start URL")
    batch_id = make_batch_id(source.name, datetime.now(UTC))
    cmd = crawl_command(source, start_urls, landing_dir, batch_id, max_pages)
    env = {**os.environ, "SCRAPY_SETTINGS_MODULE": "scrapers.settings"}
    started = time.perf_counter()
    try:
        # Stopped with SIGTERM on timeout, or when this process is interrupted or killed: Scrapy then closes the
        # spider, and the landing pipeline discards the batch it cut short.
        proc = run_child(cmd, timeout_s=timeout_s, cwd=PROJECT_DIR, env=env)
    except subprocess.TimeoutExpired as exc:
        raise CrawlError(f"crawl of {source.name} timed out after {timeout_s} s") from exc
    seconds = time.perf_counter() - started
    log_tail = "\n".join(proc.stderr.splitlines()[-40:])
    batch_dir = landing_dir / source.name / batch_id
    if proc.returncode != 0 or not (batch_dir / "manifest.json").exists():
        raise CrawlError(f"crawl of {source.name} failed (exit {proc.returncode}); last log lines:\n{log_tail}")
    return CrawlResult(batch=read_batch(batch_dir), seconds=seconds, log_tail=log_tail)
