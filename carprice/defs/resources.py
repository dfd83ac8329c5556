"""Dagster resources: the only objects that know where data lives, built from carprice.config."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from carprice.config import SOURCES, Settings, load_settings
from carprice.scraping import CrawlResult, crawl_source
from carprice.warehouse import Warehouse


class WarehouseResource(dg.ConfigurableResource):
    """The DuckDB warehouse file, and the snapshot published for readers."""

    path: str
    snapshot_path: str

    def get(self) -> Warehouse:
        return Warehouse(self.path)


class LandingZoneResource(dg.ConfigurableResource):
    """The folder where spiders land batches."""

    path: str

    @property
    def root(self) -> Path:
        return Path(self.path)


class ModelStoreResource(dg.ConfigurableResource):
    """The folder holding model artifacts (LightGBM text files and their metadata)."""

    path: str

    @property
    def root(self) -> Path:
        return Path(self.path)


class ScraperResource(dg.ConfigurableResource):
    """Runs spiders in their own process; starts the embedded marketplace for sources that use it."""

    landing_dir: str
    market_seed: int = 7
    market_day: int = 0
    market_listings: int = 3000
    market_faults: str = ""  # comma-separated fault names, for fault-injection runs
    timeout_s: int = 1800

    def crawl(self, source_name: str) -> CrawlResult:
        if source_name not in SOURCES:
            raise dg.Failure(f"unknown source {source_name!r}; configured: {sorted(SOURCES)}")
        faults = frozenset(f for f in self.market_faults.split(",") if f)
        return crawl_source(SOURCES[source_name], Path(self.landing_dir), market_seed=self.market_seed,
                            market_day=self.market_day, market_listings=self.market_listings,
                            market_faults=faults, timeout_s=self.timeout_s)


def build_resources(settings: Settings | None = None) -> dict[str, dg.ConfigurableResource]:
    """All resources for one installation, from the settings (the environment by default)."""
    settings = settings or load_settings()
    return {
        "warehouse": WarehouseResource(path=str(settings.warehouse_path), snapshot_path=str(settings.snapshot_path)),
        "landing_zone": LandingZoneResource(path=str(settings.landing_dir)),
        "model_store": ModelStoreResource(path=str(settings.models_dir)),
        "scraper": ScraperResource(landing_dir=str(settings.landing_dir), market_seed=settings.market_seed,
                                   market_day=settings.market_day, market_listings=settings.market_listings,
                                   market_faults=",".join(sorted(settings.market_faults)),
                                   timeout_s=settings.crawl_timeout_s),
    }
