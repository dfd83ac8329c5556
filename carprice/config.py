"""The one place where carprice reads its environment and keeps its defaults."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent

# The embedded marketplace's start URL is only known once it runs; sources use this placeholder.
EMBEDDED_MARKETPLACE = "embedded"


@dataclass(frozen=True)
class SourceConfig:
    """A site the spiders crawl, and how politely."""

    name: str
    start_url: str
    link_css: str = "a.listing-link"
    next_css: str | None = None
    scrapy_settings: Mapping[str, str | int | float] = field(default_factory=dict)


# Loopback answers in milliseconds, so the embedded site may be crawled hard; AutoThrottle
# still backs off if it slows down.
_LOOPBACK_CRAWL = {
    "CONCURRENT_REQUESTS": 32,
    "CONCURRENT_REQUESTS_PER_DOMAIN": 32,
    "DOWNLOAD_DELAY": 0,
    "AUTOTHROTTLE_START_DELAY": 0,
    "AUTOTHROTTLE_TARGET_CONCURRENCY": 32,
}

SOURCES: dict[str, SourceConfig] = {
    "automarkt": SourceConfig(name="automarkt", start_url=EMBEDDED_MARKETPLACE, scrapy_settings=_LOOPBACK_CRAWL),
}


@dataclass(frozen=True)
class Settings:
    """Paths and defaults for one installation; every field can be set from the environment."""

    data_dir: Path
    dagster_home: Path
    market_seed: int = 7
    market_listings: int = 3000
    market_day: int = 0
    crawl_timeout_s: int = 1800

    @property
    def landing_dir(self) -> Path:
        return self.data_dir / "landing"

    @property
    def warehouse_path(self) -> Path:
        return self.data_dir / "warehouse.duckdb"

    @property
    def snapshot_path(self) -> Path:
        """The read-only copy analysts query while the platform writes the live file."""
        return self.data_dir / "warehouse-snapshot.duckdb"

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Settings from ``CARPRICE_*`` and ``DAGSTER_HOME`` variables, with project-local defaults."""
    env = os.environ if env is None else env
    return Settings(
        data_dir=Path(env.get("CARPRICE_DATA_DIR", PROJECT_DIR / "data")).resolve(),
        dagster_home=Path(env.get("DAGSTER_HOME", PROJECT_DIR / ".dagster")).resolve(),
        market_seed=int(env.get("CARPRICE_MARKET_SEED", 7)),
        market_listings=int(env.get("CARPRICE_MARKET_LISTINGS", 3000)),
        market_day=int(env.get("CARPRICE_MARKET_DAY", 0)),
        crawl_timeout_s=int(env.get("CARPRICE_CRAWL_TIMEOUT_S", 1800)),
    )
