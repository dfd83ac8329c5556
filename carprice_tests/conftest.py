"""Shared fixtures: a real crawl of a small simulated marketplace, reused by the warehouse and asset tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from carprice.config import SOURCES, Settings, SourceConfig
from carprice.ingest.landing import Batch, read_batch
from carprice.market.server import running_marketplace
from carprice.scraping.crawl import CrawlResult, crawl_source

SMALL_MARKET = {"market_seed": 11, "market_day": 30, "market_listings": 1500}


@pytest.fixture(scope="session")
def crawled_batch(tmp_path_factory) -> Batch:
    """One batch landed by the real spider crawling the real local marketplace over HTTP."""
    landing = tmp_path_factory.mktemp("landing")
    return crawl_market(landing, seed=SMALL_MARKET["market_seed"], day=SMALL_MARKET["market_day"],
                        listings=SMALL_MARKET["market_listings"]).batch


@pytest.fixture
def settings(tmp_path) -> Settings:
    """Settings whose every path is inside this test's temporary folder."""
    return Settings(data_dir=tmp_path / "data", dagster_home=tmp_path / "dagster_home", **SMALL_MARKET,
                    crawl_timeout_s=300)


def copy_batch(batch: Batch, landing_dir: Path) -> Batch:
    """A copy of ``batch`` in another landing zone (tests never touch the shared one)."""
    target = landing_dir / batch.source / batch.batch_id
    shutil.copytree(batch.path, target)
    return read_batch(target)


def crawl_market(landing_dir: Path, *, seed: int, day: int, listings: int, faults: frozenset[str] = frozenset(),
                 source: SourceConfig = SOURCES["automarkt"], max_pages: int | None = None) -> CrawlResult:
    """A real crawl of the simulated marketplace as it is on ``day``, started for the crawl and stopped after."""
    with running_marketplace(seed, day, listings, faults=faults) as base:
        return crawl_source(source, landing_dir, start_url=f"{base}/cars?page=1", timeout_s=300, max_pages=max_pages)
