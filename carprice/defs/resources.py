"""Dagster resources: the only objects that know where data lives, built from carprice.config."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from carprice.alerts import Alert, load_hook, raise_alerts
from carprice.config import SOURCES, Settings, load_settings
from carprice.market.faults import faults_on_day, parse_fault_schedule
from carprice.market.shifts import parse_shifts
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
    market_faults: str = ""  # comma-separated fault names ("name@DAY": that market day only)
    market_shifts: str = ""  # market shift episodes, e.g. "suv+30%@40"
    timeout_s: int = 1800

    def crawl(self, source_name: str, market_day: int | None = None) -> CrawlResult:
        """Crawl one source; the embedded marketplace shows ``market_day`` (the configured day by default)."""
        if source_name not in SOURCES:
            raise dg.Failure(f"unknown source {source_name!r}; configured: {sorted(SOURCES)}")
        day = self.market_day if market_day is None else market_day
        try:
            faults = faults_on_day(parse_fault_schedule(self.market_faults), day)
            shifts = parse_shifts(self.market_shifts)
        except ValueError as exc:
            raise dg.Failure(f"bad marketplace settings: {exc}") from exc
        return crawl_source(SOURCES[source_name], Path(self.landing_dir), market_seed=self.market_seed,
                            market_day=day, market_listings=self.market_listings, market_faults=faults,
                            market_shifts=shifts, timeout_s=self.timeout_s)


class AlertsResource(dg.ConfigurableResource):
    """Where alerts go besides the run log and the alerts table: one hook function, named in the settings."""

    hook: str = ""  # "package.module:function"

    def send(self, wh: Warehouse, alerts: list[Alert], log, run_id: str | None = None) -> int:
        """Log, record and deliver ``alerts``; a hook that cannot be loaded is logged, and the alerts still recorded."""
        try:
            hook = load_hook(self.hook)
        except ValueError as exc:
            log.error("alerts are recorded but not sent: %s", exc)
            hook = None
        return raise_alerts(wh, alerts, log=log, hook=hook, run_id=run_id)


class ReportsResource(dg.ConfigurableResource):
    """The folder of monitoring reports, and the URL it is served under (`carprice ui` serves it)."""

    path: str
    base_url: str = ""

    @property
    def root(self) -> Path:
        return Path(self.path)

    def url_of(self, report: Path) -> str:
        relative = report.resolve().relative_to(self.root.resolve()).as_posix()
        return self.base_url.rstrip("/") + "/" + relative


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
                                   market_shifts=settings.market_shifts, timeout_s=settings.crawl_timeout_s),
        "alerts": AlertsResource(hook=settings.alert_hook),
        "reports": ReportsResource(path=str(settings.reports_dir), base_url=settings.reports_url),
    }
