"""The one place where carprice reads its environment and keeps its defaults."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field, fields
from datetime import date, timedelta
from pathlib import Path

from carprice.money.rates import Money, load_money

PROJECT_DIR = Path(__file__).resolve().parent.parent
# The installation used when no data folder is named.
DEFAULT_DATA_DIR = PROJECT_DIR / "data"

# Day 0 of the simulated marketplace's calendar; by default it is crawled as it is today.
MARKET_CALENDAR_START = date(2026, 1, 1)


def market_date(day: int) -> date:
    """The calendar date of a simulated market day."""
    return MARKET_CALENDAR_START + timedelta(days=day)


def market_day(d: date) -> int:
    """The simulated market day of a calendar date (negative before the calendar starts)."""
    return (d - MARKET_CALENDAR_START).days


# Where `carprice ui` serves the Dagster UI (the monitoring reports are on the next port).
UI_PORT = 3000

# Where `carprice serve` answers price requests by default (and where `carprice ui` starts it).
SERVE_PORT = 8000

# How long a command waits for a live run elsewhere (the daemon under `carprice ui`, another `carprice run`) to
# release the warehouse before it gives up naming that run: longer than the slowest training seen (~2 min).
POOL_WAIT_S = 600.0

# The embedded marketplace's start URL is only known once it runs; sources use this placeholder.
EMBEDDED_MARKETPLACE = "embedded"
# Its public address: each crawl serves it on a free port of its own, but its pages name their canonical URL at
# this address (as a real site behind a load balancer does), so the warehouse's links stay the same from crawl to
# crawl; `carprice ui` and `carprice serve` keep the market as last crawled up there, so they open.
MARKET_PORT = 8765
MARKET_URL = f"http://127.0.0.1:{MARKET_PORT}"


# How carprice introduces itself to the sites it crawls, with a way to reach its operator.
DEFAULT_USER_AGENT = "carprice-bot/1.0 (+https://github.com/carprice/carprice)"
# The name of a crawl schedule: one per source that has a cron schedule (see carprice.sources).
CRAWL_SCHEDULE_PREFIX = "crawl_"


@dataclass(frozen=True)
class SourceConfig:
    """A site the spiders crawl, how politely, when, and what its pages leave unsaid.

    One table of the installation's sources.toml each (carprice.sources reads and checks the file).
    """

    name: str
    start_urls: tuple[str, ...] = ()      # result pages to walk (rel=next, ItemList data or link_css/next_css)
    sitemap_urls: tuple[str, ...] = ()    # sitemap.xml files (or robots.txt naming them) listing the listing pages
    sitemap_pattern: str | None = None    # a regex a sitemap's page must match to be read as a listing (else: all)
    link_css: str = "a.listing-link"      # listing links on a result page without ItemList data
    next_css: str | None = None           # the next results page when the site has no rel=next
    allowed_domains: tuple[str, ...] = ()  # empty: the hosts of the start and sitemap URLs
    concurrency: int = 4                  # requests in flight to the site at once
    delay_s: float = 0.5                  # seconds between requests (AutoThrottle adapts it to the site's answers)
    autothrottle: bool = True
    obey_robots: bool = True
    user_agent: str = DEFAULT_USER_AGENT
    schedule: str | None = None           # cron, UTC; None: crawled on demand only
    currency: str | None = None           # what a price the page gives no currency for is in
    distance_unit: str = "km"             # what an odometer the page gives no unit for is in: "km" or "mi"
    enabled: bool = True                  # a disabled source keeps its batches but is not crawled
    scrapy_settings: Mapping[str, str | int | float | bool] = field(default_factory=dict)  # any other Scrapy setting
    # The reviewed reference profile shipped with the project (carprice/validation/references/), so the
    # source's first batch is judged like any later one instead of being held for onboarding.
    reviewed_reference: str | None = None

    @property
    def embedded(self) -> bool:
        """Whether this is the embedded marketplace, whose address is only known once it runs."""
        return EMBEDDED_MARKETPLACE in self.start_urls

    @property
    def schedule_name(self) -> str:
        return f"{CRAWL_SCHEDULE_PREFIX}{self.name}"

    def crawl_settings(self) -> dict[str, str | int | float | bool]:
        """The Scrapy settings of a crawl of this source."""
        return {"CONCURRENT_REQUESTS_PER_DOMAIN": self.concurrency, "CONCURRENT_REQUESTS": max(16, self.concurrency),
                "DOWNLOAD_DELAY": self.delay_s, "AUTOTHROTTLE_ENABLED": self.autothrottle,
                "ROBOTSTXT_OBEY": self.obey_robots, "USER_AGENT": self.user_agent,
                **({"SITEMAP_LISTING_PATTERN": self.sitemap_pattern} if self.sitemap_pattern else {}),
                **self.scrapy_settings}


# The embedded marketplace: the default entry of every sources.toml. Loopback answers in milliseconds, so it may
# be crawled hard; AutoThrottle still backs off if it slows down.
EMBEDDED_SOURCE = SourceConfig(
    name="automarkt", start_urls=(EMBEDDED_MARKETPLACE,), concurrency=32, delay_s=0.0, schedule="0 6 * * *",
    scrapy_settings={"AUTOTHROTTLE_START_DELAY": 0, "AUTOTHROTTLE_TARGET_CONCURRENCY": 32},
    reviewed_reference="automarkt.json")


@dataclass(frozen=True)
class ValidationConfig:
    """Thresholds of the checks every landed batch must pass before it may reach training.

    A source is judged against its own reviewed reference: a site whose placeholder prices, unpublished
    fields or reposts are its normal keeps them, and only a change from that normal is stopped. The absolute
    contract blocks only what no real source can produce.
    """

    reference_batches: int = 5            # the newest admitted batches the reference is learned from
    reject_rate_rise: float = 0.05        # pages the spider could not turn into a listing, over the reference's
    duplicate_rate_rise: float = 0.02     # the same listing (site id or URL path) more than once, over the reference
    repost_rate_rise: float = 0.05        # the same car under several URLs, over the reference's rate
    out_of_range_rise: float = 0.03       # per field, values outside the plausible range, over the reference's share
    null_rate_tolerance: float = 0.05     # allowed rise of a field's null rate over the reference
    max_impossible_rate: float = 0.01     # per field, values no real listing has (future model years, ...): absolute
    max_price_scale: float = 2.0          # batch median price over the reference's, either way
    max_mileage_scale: float = 1.3        # batch median km per year over the reference's, either way
    max_unseen_currency_share: float = 0.01
    psi_threshold: float = 0.25           # categorical drift (population stability index)
    wasserstein_threshold: float = 0.25   # numeric drift, in units of the reference's interquartile range
    field_present_share: float = 0.5     # a source field this common in the reference ...
    field_missing_share: float = 0.05    # ... is missing when it falls below this share
    field_new_share: float = 0.2         # a field unseen in the reference is new above this share
    min_rows_for_drift: int = 100        # smaller batches skip the distribution check (too noisy)


@dataclass(frozen=True)
class PromotionConfig:
    """When a challenger may replace the champion (both scored on the same fresh evaluation data)."""

    main_metric: str = "mae"                  # lower is better: "mae" (in the market currency) or "median_ape"
    min_relative_improvement: float = 0.01    # the challenger must beat the champion by this share
    max_slice_regression: float = 0.15        # ... and be at most this much worse on any large slice
    min_slice_rows: int = 50                  # slices smaller than this are reported, not judged
    holdout_fraction: float = 0.2             # newest share of listings held out from training, at most ...
    # ... the listings of the newest days, when dates tell, but no fewer than holdout_min_rows: every held-out row
    # is one the served model cannot learn from, and the newest are the ones that say what the market does now
    # (with a fifth held out, the demo's model never saw an SUV listed after SUV prices jumped).
    holdout_days: int = 2
    holdout_min_rows: int = 200               # enough for a paired judgement and its larger slices
    backtest_folds: int = 2                   # earlier periods each recipe is refit and scored on


@dataclass(frozen=True)
class MonitoringConfig:
    """What each accepted batch's monitoring compares, and when it requests retraining."""

    reference_rows: int = 5000              # sample of the champion's training rows kept as the drift reference
    column_drift_threshold: float = 0.1     # per column: Wasserstein (in std units) or Jensen-Shannon distance
    drift_share_threshold: float = 0.3      # this share of drifted feature columns requests retraining
    prediction_drift_threshold: float = 0.1  # predicted prices: Wasserstein distance (std units)
    decay_margin: float = 0.2               # fresh-listing MAPE this much above the champion's requests retraining
    min_fresh_rows: int = 50                # fewer fresh listings: quality is reported, not judged
    # The champion's error on new listings is also broken down by these columns (a shift can hit one body type) ...
    segment_columns: tuple[str, ...] = ("body", "make")
    min_segment_rows: int = 30              # ... for segments with at least this many new listings
    # A 90% interval that covers fewer prices than its target minus this is flagged (0.73 is flagged, 0.88 is not).
    coverage_tolerance: float = 0.05


@dataclass(frozen=True)
class RetrainingConfig:
    """When the retraining sensor starts a training run."""

    every_batches: int = 7            # the regular cadence: this many admitted batches since the last training
    min_batches_between: int = 2      # a drift or decay trigger waits for this many (new data to learn from)


@dataclass(frozen=True)
class ServingConfig:
    """How the price API serves the champion and judges what it may rate."""

    poll_interval_s: float = 1.0          # how often the snapshot is looked at for a new champion or new data
    max_batch: int = 10_000               # cars in one POST /valuations:batch
    # A batch of 10,000 described cars is ~3 MB of JSON; anything far larger is refused before it is read (413).
    max_body_bytes: int = 16 * 1024 * 1024
    # With fewer training listings of a make and model, its price leans on the make's and segment's averages while
    # the interval is calibrated on all cars: a price is given but no rating.
    min_model_listings: int = 5
    comparables: int = 8                  # current listings shown beside a valuation (5-10 when the market has them)
    top_effects: int = 6                  # features whose effects a valuation lists (the rest are summed up)
    check_rows: int = 5                   # rows a new champion must predict finite prices for before it serves
    # Single valuations waiting together are valued in one pass of at most this many (serving.batching): enough to
    # spread the per-call cost (about 0.5 ms), few enough that the first in the pass does not wait long for the last
    # (explaining a car costs about 0.7 ms of the trees' time).
    coalesce_max: int = 16
    # Passes run on this many threads at once: LightGBM lets go of the GIL while it explains a pass's cars, so one
    # thread builds the next pass's features while another is in the trees.
    valuation_workers: int = 2
    deals_page_max: int = 200             # largest page of GET /deals


# The environment variable of each Settings field: load_settings reads them, Settings.to_env writes them.
ENV_VARS: dict[str, str] = {
    "data_dir": "CARPRICE_DATA_DIR",
    "dagster_home": "DAGSTER_HOME",
    "market_seed": "CARPRICE_MARKET_SEED",
    "market_listings": "CARPRICE_MARKET_LISTINGS",
    "market_day": "CARPRICE_MARKET_DAY",
    "market_faults": "CARPRICE_MARKET_FAULTS",
    "market_shifts": "CARPRICE_MARKET_SHIFTS",
    "crawl_timeout_s": "CARPRICE_CRAWL_TIMEOUT_S",
    "alert_hook": "CARPRICE_ALERT_HOOK",
    "reports_url": "CARPRICE_REPORTS_URL",
    "market_currency": "CARPRICE_MARKET_CURRENCY",
}


@dataclass(frozen=True)
class DataLayout:
    """Where one installation keeps its files: everything under one data folder."""

    root: Path

    @property
    def landing_dir(self) -> Path:
        return self.root / "landing"

    @property
    def warehouse_path(self) -> Path:
        return self.root / "warehouse.duckdb"

    @property
    def snapshot_path(self) -> Path:
        """The read-only copy analysts query while the platform writes the live file."""
        return self.root / "warehouse-snapshot.duckdb"

    @property
    def models_dir(self) -> Path:
        return self.root / "models"

    @property
    def reports_dir(self) -> Path:
        """Evidently monitoring reports (HTML), one folder per batch."""
        return self.root / "reports"

    @property
    def sources_path(self) -> Path:
        """The sites this installation crawls (carprice.sources); the embedded marketplace when it is absent."""
        return self.root / "sources.toml"

    @property
    def marketplace_path(self) -> Path:
        """The embedded marketplace as last crawled (seed, day, size, faults, shifts), to serve it again."""
        return self.root / "marketplace.json"

    @property
    def rates_path(self) -> Path:
        """The installation's exchange rates; when absent, the rates shipped in carprice/money/rates.csv."""
        return self.root / "rates.csv"


@dataclass(frozen=True)
class Settings:
    """Paths and defaults for one installation; every field can be set from the environment."""

    data_dir: Path
    dagster_home: Path
    market_seed: int = 7
    market_listings: int = 3000
    market_day: int = 0                          # the simulated market's day (load_settings: today)
    market_faults: frozenset[str] = frozenset()  # fault names; "name@DAY" applies on that market day only
    market_shifts: str = ""                      # market shift episodes, e.g. "suv+30%@40" (see market.shifts)
    crawl_timeout_s: int = 1800
    alert_hook: str = ""                         # "package.module:function" called with every alert
    reports_url: str = "http://127.0.0.1:3001/"  # where `carprice ui` serves the monitoring reports
    # The currency of the market this installation prices: clean prices, models, metrics, valuations and pages are
    # in it; each listing keeps the amount and currency its page stated (see carprice.money).
    market_currency: str = "EUR"

    def __post_init__(self):
        code = self.market_currency.strip().upper()
        if not re.fullmatch(r"[A-Z]{3}", code):
            raise ValueError(f"market currency must be an ISO 4217 code such as EUR or USD, "
                             f"not {self.market_currency!r}")
        object.__setattr__(self, "market_currency", code)

    @property
    def layout(self) -> DataLayout:
        return DataLayout(self.data_dir)

    @property
    def landing_dir(self) -> Path:
        return self.layout.landing_dir

    @property
    def warehouse_path(self) -> Path:
        return self.layout.warehouse_path

    @property
    def snapshot_path(self) -> Path:
        return self.layout.snapshot_path

    @property
    def models_dir(self) -> Path:
        return self.layout.models_dir

    @property
    def reports_dir(self) -> Path:
        return self.layout.reports_dir

    @property
    def rates_path(self) -> Path:
        return self.layout.rates_path

    def money(self) -> Money:
        """The market currency and the exchange rates into it (RatesError for a rate file that cannot be read)."""
        return load_money(self.market_currency, self.rates_path)

    def to_env(self) -> dict[str, str]:
        """The environment variables from which load_settings reads these settings back (for child processes)."""
        return {var: _to_text(getattr(self, name)) for name, var in ENV_VARS.items()}


def _to_text(value: object) -> str:
    return ",".join(sorted(value)) if isinstance(value, frozenset) else str(value)


def _from_text(text: str, like: object) -> object:
    """``text`` as a value of the type of ``like`` (a field's default)."""
    if isinstance(like, frozenset):
        return frozenset(part.strip() for part in text.split(",") if part.strip())
    return type(like)(text)


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Settings from ``CARPRICE_*`` and ``DAGSTER_HOME`` variables, with project-local defaults.

    One data folder holds one installation: warehouse, landing zone, models, reports and, unless
    ``DAGSTER_HOME`` says otherwise, the Dagster instance (``<data dir>/dagster``).
    """
    env = os.environ if env is None else env
    given = {name: env[var] for name, var in ENV_VARS.items() if var in env}
    data_dir = Path(given.pop("data_dir", DEFAULT_DATA_DIR)).resolve()
    dagster_home = Path(given.pop("dagster_home", data_dir / "dagster")).resolve()
    defaults = {f.name: f.default for f in fields(Settings)}
    values = {name: _from_text(text, defaults[name]) for name, text in given.items()}
    values.setdefault("market_day", market_day(date.today()))
    return Settings(data_dir=data_dir, dagster_home=dagster_home, **values)


# Settings that stay unset unless given: the market day is today's in each process (a long-lived code
# server must not freeze it), and the Dagster home is the instance's own business.
_NOT_EXPORTED = ("market_day", "dagster_home")


def export_defaults(env: MutableMapping[str, str] | None = None) -> None:
    """Give the settings the environment leaves unset their default value there, so that resources reading
    ``dg.EnvVar`` (the deployed code location) find one."""
    env = os.environ if env is None else env
    defaults = load_settings(env).to_env()
    for name, var in ENV_VARS.items():
        if name not in _NOT_EXPORTED:
            env.setdefault(var, defaults[var])
