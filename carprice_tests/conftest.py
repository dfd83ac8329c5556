"""Shared fixtures: a real crawl of a small simulated marketplace, reused by the warehouse and asset tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from carprice.config import SOURCES, Settings
from carprice.landing import Batch, read_batch
from carprice.scraping import crawl_source

SMALL_MARKET = {"market_seed": 11, "market_day": 30, "market_listings": 1500}


@pytest.fixture(scope="session")
def crawled_batch(tmp_path_factory) -> Batch:
    """One batch landed by the real spider crawling the real local marketplace over HTTP."""
    landing = tmp_path_factory.mktemp("landing")
    result = crawl_source(SOURCES["automarkt"], landing, timeout_s=300, **SMALL_MARKET)
    return result.batch


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
