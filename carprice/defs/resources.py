"""Dagster resources: the only objects that know where data lives, built from carprice.config."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import dagster as dg

from carprice.config import ENV_VARS, MARKET_URL, DataLayout, Settings, market_day
from carprice.market.faults import faults_on_day, parse_fault_schedule
from carprice.market.server import record_market, running_marketplace
from carprice.market.shifts import parse_shifts
from carprice.money.rates import Money, load_money
from carprice.monitoring.alerts import Alert, dispatch_alerts, load_hook
from carprice.scraping.crawl import CrawlResult, crawl_source
from carprice.sources import SourcesError, load_sources
from carprice.warehouse import Warehouse


class WarehouseResource(dg.ConfigurableResource):
    """The DuckDB warehouse file of the installation in ``data_dir``, and the snapshot published for readers."""

    data_dir: str
    market_currency: str = "EUR"

    def get(self) -> Warehouse:
        return Warehouse(DataLayout(Path(self.data_dir)).warehouse_path)

    def money(self) -> Money:
        """The installation's market currency and its exchange rates (its rate file, else the shipped one)."""
        return load_money(self.market_currency, DataLayout(Path(self.data_dir)).rates_path)

    @property
    def snapshot_path(self) -> Path:
        return DataLayout(Path(self.data_dir)).snapshot_path


class LandingZoneResource(dg.ConfigurableResource):
    """The folder where spiders land batches."""

    data_dir: str

    @property
    def root(self) -> Path:
        return DataLayout(Path(self.data_dir)).landing_dir


class ModelStoreResource(dg.ConfigurableResource):
    """The folder holding model artifacts (LightGBM text files and their metadata)."""

    data_dir: str

    @property
    def root(self) -> Path:
        return DataLayout(Path(self.data_dir)).models_dir


class MarketplaceResource(dg.ConfigurableResource):
    """The embedded simulated marketplace: the one place the platform reaches carprice.market.

    Nothing downstream knows the site is simulated; sources whose start URL is ``embedded`` are crawled
    from it, started for the crawl and stopped after.
    """

    seed: int
    day: int | None  # None: today on the market calendar, worked out when the crawl starts
    listings: int
    faults: str  # comma-separated fault names ("name@DAY": that market day only)
    shifts: str  # market shift episodes, e.g. "suv+30%@40"

    def as_of(self, day: int | None = None) -> dict:
        """The ``running_marketplace`` arguments of the market on ``day`` (the configured day by default)."""
        day = day if day is not None else self.day if self.day is not None else market_day(date.today())
        try:
            faults = faults_on_day(parse_fault_schedule(self.faults), day)
            shifts = parse_shifts(self.shifts)
        except ValueError as exc:
            raise dg.Failure(f"bad marketplace settings: {exc}") from exc
        return {"seed": self.seed, "day": day, "listings": self.listings, "faults": faults, "shifts": shifts}

    @contextlib.contextmanager
    def running(self, market: dict) -> Iterator[str]:
        """The marketplace ``as_of`` gave, for the block, its pages naming their canonical URL at its public address
        (MARKET_URL); yields its start URL."""
        with running_marketplace(**market, public_url=MARKET_URL) as base:
            yield f"{base}/cars?page=1"


class ScraperResource(dg.ConfigurableResource):
    """Runs spiders in their own process, into the landing zone."""

    data_dir: str
    marketplace: MarketplaceResource
    timeout_s: int

    def crawl(self, source_name: str, market_day: int | None = None) -> CrawlResult:
        """Crawl one source; the embedded marketplace shows ``market_day`` (the configured day by default)."""
        layout = DataLayout(Path(self.data_dir))
        try:
            sources = load_sources(layout.sources_path)
        except SourcesError as exc:
            raise dg.Failure(str(exc)) from exc
        if source_name not in sources:
            raise dg.Failure(f"unknown source {source_name!r}: {layout.sources_path} configures "
                             f"{', '.join(sorted(sources))}")
        source = sources[source_name]
        if not source.enabled:
            raise dg.Failure(f"source {source_name} is disabled in {layout.sources_path} (enabled = false)")
        with contextlib.ExitStack() as stack:
            start_url, market = None, None
            if source.embedded:
                market = self.marketplace.as_of(market_day)
                start_url = stack.enter_context(self.marketplace.running(market))
            result = crawl_source(source, layout.landing_dir, start_url=start_url, timeout_s=self.timeout_s)
        if market is not None and result.batch.manifest.get("counts", {}).get("listings"):
            try:
                record_market(layout.marketplace_path, market)  # so `carprice ui` can serve its links again
            except OSError as exc:  # only a note: the landed batch stands
                dg.get_dagster_logger().warning("could not note the market crawled in %s: %s",
                                                layout.marketplace_path, exc)
        return result


class AlertsResource(dg.ConfigurableResource):
    """Where alerts go besides the run log and the alerts table: one hook function, named in the settings."""

    hook: str  # "package.module:function", or empty

    def send(self, wh: Warehouse, alerts: list[Alert], log, run_id: str | None = None) -> int:
        """Log, record and deliver ``alerts``; a hook that cannot be loaded is logged, and the alerts still recorded."""
        try:
            hook = load_hook(self.hook)
        except ValueError as exc:
            log.error("alerts are recorded but not sent: %s", exc)
            hook = None
        return dispatch_alerts(wh, alerts, log=log, hook=hook, run_id=run_id)


class ReportsResource(dg.ConfigurableResource):
    """The folder of monitoring reports, and the URL it is served under (`carprice ui` serves it)."""

    data_dir: str
    base_url: str

    @property
    def root(self) -> Path:
        return DataLayout(Path(self.data_dir)).reports_dir

    def url_of(self, report: Path) -> str:
        relative = report.resolve().relative_to(self.root.resolve()).as_posix()
        return self.base_url.rstrip("/") + "/" + relative


def build_resources(settings: Settings | None = None) -> dict[str, dg.ConfigurableResource]:
    """All resources of one installation: from ``settings`` (tests, `carprice run`), or, without them, from
    the environment through ``dg.EnvVar`` (the code location the webserver and daemon load; the UI shows
    which variable each value comes from)."""
    if settings is None:
        text, number = (lambda field: dg.EnvVar(ENV_VARS[field])), (lambda field: dg.EnvVar.int(ENV_VARS[field]))
        day = number("market_day") if ENV_VARS["market_day"] in os.environ else None
    else:
        env = settings.to_env()
        text, number = (lambda field: env[ENV_VARS[field]]), (lambda field: int(env[ENV_VARS[field]]))
        day = settings.market_day
    data_dir = text("data_dir")
    return {
        "warehouse": WarehouseResource(data_dir=data_dir, market_currency=text("market_currency")),
        "landing_zone": LandingZoneResource(data_dir=data_dir),
        "model_store": ModelStoreResource(data_dir=data_dir),
        "scraper": ScraperResource(
            data_dir=data_dir, timeout_s=number("crawl_timeout_s"),
            marketplace=MarketplaceResource(seed=number("market_seed"), day=day, listings=number("market_listings"),
                                            faults=text("market_faults"), shifts=text("market_shifts"))),
        "alerts": AlertsResource(hook=text("alert_hook")),
        "reports": ReportsResource(data_dir=data_dir, base_url=text("reports_url")),
    }
