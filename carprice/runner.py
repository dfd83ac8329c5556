"""Run the platform through its own schedule and sensors on a persistent Dagster instance.

``Automation`` ticks the definitions' real schedule and sensors on a simulated clock and executes the
runs they request, with the tags the daemon would give them, on the project's instance: the daily crawl
schedule crawls the marketplace as it is on the tick's date, the landing sensor turns each new batch into
a ``batch_job`` run, and the retraining sensor starts ``training_job`` when the cadence is reached or a
batch's monitoring asks for it. ``carprice run`` is one simulated day; ``carprice run --days N`` is N.
``carprice ui`` runs the same schedule and sensors in the Dagster daemon on the wall clock.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path

import dagster as dg

from carprice.config import Settings
from carprice.market.generator import MarketConfig

DAGSTER_YAML = """# Written by carprice: the project's own Dagster instance (runs, events, schedules).
telemetry:
  enabled: false
concurrency:
  pools:
    # DuckDB takes one writer at a time: assets that write share the "warehouse" pool.
    default_limit: 1
"""
# The instance keeps every event; the terminal only needs INFO and above.
_QUIET = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}

Progress = Callable[[str], object]


def prepare_dagster_home(settings: Settings) -> Path:
    """Create the Dagster home with its dagster.yaml and point DAGSTER_HOME at it."""
    home = settings.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        config.write_text(DAGSTER_YAML, encoding="utf-8")
    os.environ["DAGSTER_HOME"] = str(home)
    return home


class PipelineError(RuntimeError):
    """A run that failed for a reason other than validation; names the run and the failing step."""


def _first_failure(result: dg.ExecuteInProcessResult) -> str:
    for event in result.all_events:
        if event.event_type_value == "STEP_FAILURE":
            error = event.step_failure_data.error if event.step_failure_data else None
            cause = error.cause.message.strip() if error and error.cause else (error.message.strip() if error else "")
            return f"step {event.step_key} failed: {cause.splitlines()[-1] if cause else event.message}"
    return "the run failed"


def _metadata(result: dg.ExecuteInProcessResult, asset: str) -> dict:
    """The metadata of ``asset``'s materialization in ``result``."""
    events = result.asset_materializations_for_node(asset)
    if not events:
        raise PipelineError(f"run {result.run_id} did not materialize {asset}: {_first_failure(result)}")
    return {k: v.value for k, v in events[-1].metadata.items()}


def market_date(day: int):
    """The calendar date of a simulated market day."""
    return MarketConfig.start_date + timedelta(days=day)


@dataclass
class LaunchedRun:
    """A run the automation requested and executed: who asked, for what, and how it ended."""

    origin: str
    job: str
    partition: str | None
    result: dg.ExecuteInProcessResult
    seconds: float
    tags: dict[str, str]


class Automation:
    """The definitions' own schedule and sensors, ticked on a simulated clock against a persistent instance."""

    def __init__(self, settings: Settings, progress: Progress = print):
        from carprice.definitions import build_definitions

        prepare_dagster_home(settings)
        self.settings = settings
        self.instance = dg.DagsterInstance.get()
        self.defs = build_definitions(settings)
        self.repository = self.defs.get_repository_def()
        self.progress = progress
        self.cursors: dict[str, str | None] = {}

    def tick_schedule(self, name: str, when: datetime) -> list[LaunchedRun]:
        """Evaluate schedule ``name`` as of ``when`` and execute the runs it requests."""
        schedule = self.defs.resolve_schedule_def(name)
        requests = schedule(dg.build_schedule_context(instance=self.instance, scheduled_execution_time=when,
                                                      repository_def=self.repository))
        origin = {"dagster/schedule_name": name, "dagster/scheduled_execution_time": when.isoformat()}
        return [self.launch(f"schedule {name}", request, schedule.job_name, origin)
                for request in requests or [] if isinstance(request, dg.RunRequest)]

    def tick_sensor(self, name: str) -> list[LaunchedRun]:
        """Evaluate sensor ``name`` with its cursor, apply its partition requests, execute the runs it requests."""
        sensor = self.defs.resolve_sensor_def(name)
        context = dg.build_sensor_context(instance=self.instance, cursor=self.cursors.get(name),
                                          resources=self.defs.resources, repository_def=self.repository,
                                          sensor_name=name)
        data = sensor(context)
        if not isinstance(data, dg.SensorResult):
            raise TypeError(f"sensor {name} must return a SensorResult, got {type(data).__name__}")
        self.cursors[name] = data.cursor if data.cursor is not None else self.cursors.get(name)
        for request in data.dynamic_partitions_requests or []:
            if isinstance(request, dg.AddDynamicPartitionsRequest):
                self.instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
        launched = []
        for request in data.run_requests or []:
            # As the daemon does: a run key a sensor already used is not run again.
            if request.run_key and self.instance.get_runs(filters=dg.RunsFilter(tags={
                    "dagster/sensor_name": name, "dagster/run_key": request.run_key}), limit=1):
                self.progress(f"    sensor {name}: run key {request.run_key} already ran; skipped")
                continue
            launched.append(self.launch(f"sensor {name}", request, request.job_name or sensor.job_name,
                                        {"dagster/sensor_name": name}))
        return launched

    def launch(self, origin: str, request: dg.RunRequest, job_name: str, origin_tags: dict) -> LaunchedRun:
        """Execute one requested run of ``job_name`` on the instance, tagged with who asked for it."""
        tags = {**request.tags, **origin_tags}
        if request.run_key:
            tags["dagster/run_key"] = request.run_key
        target = f"{job_name}" + (f" [{request.partition_key}]" if request.partition_key else "")
        self.progress(f"    {origin} -> {target}")
        started = time.perf_counter()
        result = self.defs.resolve_job_def(job_name).execute_in_process(
            instance=self.instance, partition_key=request.partition_key, tags=tags, raise_on_error=False,
            run_config={**(request.run_config or {}), **_QUIET})
        seconds = time.perf_counter() - started
        self.progress(f"      run {result.run_id[:8]} {'succeeded' if result.success else 'FAILED'} in {seconds:.0f} s")
        return LaunchedRun(origin, job_name, request.partition_key, result, seconds, tags)


@dataclass
class DayReport:
    """What one simulated day did: the crawl, each batch's checks and monitoring, and any training."""

    day: int
    date: str
    batch_id: str = ""
    status: str = "no batch"
    scraped: int = 0
    crawl_rejects: int = 0
    pages: int = 0
    pages_per_second: float = 0.0
    failed_checks: dict[str, str] = field(default_factory=dict)
    accepted: int = 0
    excluded: int = 0
    valued: int = 0
    deals: int = 0
    monitoring: dict = field(default_factory=dict)
    trigger: str = ""
    trained_because: str = ""
    challenger: str | None = None
    promoted: bool = False
    promotion_reason: str = ""
    metrics: dict = field(default_factory=dict)
    baselines: dict = field(default_factory=dict)
    model_version: str | None = None
    seconds: float = 0.0
    run_ids: list[str] = field(default_factory=list)
    warehouse: Path | None = None
    snapshot: Path | None = None
    dagster_home: Path | None = None

    @property
    def admitted(self) -> bool:
        from carprice.validation.admission import ADMITTED

        return self.status in ADMITTED

    def line(self) -> str:
        """One line for the multi-day progress and summary."""
        parts = [f"day {self.day:>4} {self.date}", f"{self.status:<11}", f"listings {self.scraped:>5}"]
        if not self.admitted:
            parts.append("failed: " + ", ".join(self.failed_checks) if self.failed_checks else "")
        else:
            m = self.monitoring
            if m.get("drift_share") is not None:
                parts.append(f"drift {m['drifted_columns']}/{m['n_columns']} cols")
                parts.append(f"pred drift {m['prediction_drift_score']:.3f}")
                if m.get("mape") is not None:
                    parts.append(f"MAPE new {100 * m['mape']:.1f}%"
                                 + (f" ({100 * m['decay']:+.0f}% vs model)" if m.get("decay") is not None else ""))
            elif m:
                parts.append(str(m.get("status", "")))
        if self.challenger:
            parts.append(f"trained ({self.trigger or 'by hand'}) -> {'PROMOTED' if self.promoted else 'kept champion'}")
        parts.append(f"serving {self.model_version or 'none'}")
        return " | ".join(p for p in parts if p)

    def render(self) -> str:
        """The detailed summary printed after `carprice run`."""
        lines = ["", f"carprice: day {self.day} ({self.date}) finished, batch {self.status}",
                 f"  batch            {self.batch_id}"]
        if self.pages:
            lines += [f"  pages crawled    {self.pages} ({self.pages_per_second:.0f} pages/s)",
                      f"  listings         scraped {self.scraped}, rejected by the spider {self.crawl_rejects}"]
        if self.admitted:
            lines += [f"  clean listings   {self.accepted} in the warehouse (all batches), {self.excluded} excluded "
                      "by cleaning"]
            m = self.monitoring
            if m.get("drift_share") is not None:
                lines += [f"  monitoring       {m['drifted_columns']} of {m['n_columns']} columns drifted, "
                          f"prediction drift {m['prediction_drift_score']:.3f}"
                          + (f", MAPE on new listings {100 * m['mape']:.1f}%" if m.get("mape") is not None else ""),
                          f"  report           {m.get('report_url', '')}"]
            elif m:
                lines += [f"  monitoring       {m.get('status', '')}"]
            if m.get("trigger_reasons"):
                lines += [f"  retraining asked {'; '.join(m['trigger_reasons'])}"]
            if self.challenger:
                lines += [f"  trained because  ({self.trigger or 'by hand'}) {self.trained_because}",
                          f"  challenger       {self.challenger} {'PROMOTED' if self.promoted else 'rejected'}: "
                          f"{self.promotion_reason}"]
                if self.metrics:
                    mm = self.metrics
                    lines += [f"  on fresh data    MAE {mm['mae_eur']:,.0f} EUR | median abs % error "
                              f"{100 * mm['median_ape']:.1f}% | R² {mm['r2']:.3f} | 90% interval coverage "
                              f"{100 * mm.get('interval_coverage', float('nan')):.0f}% | n={mm['n']}"]
                lines += [f"  baseline         {name}: MAE {mae:,.0f} EUR" for name, mae in self.baselines.items()]
            else:
                lines += ["  training         not due (cadence not reached, monitoring asked for none)"]
            lines += [f"  serving model    {self.model_version or 'none yet'}",
                      f"  valued listings  {self.valued}, of which {self.deals} deals (asking below the interval)"]
        elif self.batch_id:
            lines += ["  QUARANTINED: the batch stays in raw_listings; nothing downstream was touched"]
            lines += [f"    {name}: {why}" for name, why in self.failed_checks.items()]
            lines += [f"  serving model    {self.model_version or 'none yet'} (unchanged)",
                      f"  after review     .venv/bin/carprice batches readmit {self.batch_id} --by NAME --note WHY"]
        lines += [
            f"  took             {self.seconds:.0f} s",
            f"  warehouse        {self.warehouse}",
            f"  analysts query   duckdb -readonly {self.snapshot}   (a snapshot: never blocks a run)",
            f"  dagster home     {self.dagster_home}",
            "  open the UI      .venv/bin/carprice ui   (then http://127.0.0.1:3000)",
        ]
        return "\n".join(lines)

    def to_json(self) -> str:
        return json.dumps(self.__dict__ | {"admitted": self.admitted}, indent=2, default=str)


def _report_batch(report: DayReport, settings: Settings, run: LaunchedRun) -> None:
    """Fill ``report`` from one batch_job run and the warehouse."""
    from carprice.warehouse import Warehouse

    batch_id = run.partition or ""
    wh = Warehouse(settings.warehouse_path)
    status = wh.query("SELECT status FROM batch_status WHERE batch_id = ?", [batch_id])
    if status.empty:
        raise PipelineError(f"batch {batch_id} was not validated (run {run.result.run_id}): "
                            f"{_first_failure(run.result)}")
    report.batch_id, report.status = batch_id, str(status.iloc[0]["status"])
    if report.admitted:
        if not run.result.success:
            raise PipelineError(f"batch {batch_id} was admitted but run {run.result.run_id} failed downstream: "
                                f"{_first_failure(run.result)}")
        clean = _metadata(run.result, "clean_listings")
        report.accepted, report.excluded = clean["dagster/row_count"], clean["excluded"]
        report.monitoring = _metadata(run.result, "batch_monitoring")
    else:
        checks = wh.query("SELECT check_name, failures FROM batch_checks WHERE batch_id = ? AND NOT passed "
                          "AND checked_at = (SELECT max(checked_at) FROM batch_checks WHERE batch_id = ?)",
                          [batch_id, batch_id])
        report.failed_checks = {r.check_name: "; ".join(json.loads(r.failures)) for r in checks.itertuples()}


def _report_training(report: DayReport, run: LaunchedRun) -> None:
    from carprice.retraining import TRIGGER_KIND_TAG

    if not run.result.success:
        raise PipelineError(f"training run {run.result.run_id} failed: {_first_failure(run.result)}")
    model, decision = _metadata(run.result, "challenger_model"), _metadata(run.result, "champion_model")
    report.trigger = run.tags.get(TRIGGER_KIND_TAG, "")
    report.challenger, report.trained_because = model["version"], model["trained_because"]
    report.promoted, report.promotion_reason = decision["promoted"], decision["reason"]
    report.metrics = decision["scores"].get("champion_after", {}).get("overall", {})
    report.baselines = {k.removeprefix("baseline_").removesuffix("_mae_eur"): v for k, v in decision.items()
                        if k.startswith("baseline_")}


def _finish(report: DayReport, settings: Settings) -> DayReport:
    from carprice.registry import NoChampionError, champion
    from carprice.warehouse import Warehouse

    wh = Warehouse(settings.warehouse_path)
    try:
        report.model_version = champion(wh).version
    except NoChampionError:
        report.model_version = None
    report.valued, report.deals = wh.count("listing_valuations"), wh.count("deals")
    report.warehouse, report.snapshot, report.dagster_home = (settings.warehouse_path, settings.snapshot_path,
                                                              settings.dagster_home)
    return report


def crawl_time(cron: str) -> clock_time:
    """The time of day of a daily cron schedule ("M H * * *")."""
    minute, hour, *rest = cron.split()
    if rest != ["*", "*", "*"] or not (minute.isdigit() and hour.isdigit()):
        raise ValueError(f"not a once-a-day cron schedule: {cron!r}")
    return clock_time(int(hour), int(minute), tzinfo=UTC)


def simulate_day(automation: Automation, day: int) -> DayReport:
    """One simulated market day: the crawl schedule's tick, then the landing and retraining sensors."""
    started = time.perf_counter()
    date = market_date(day)
    report = DayReport(day=day, date=date.isoformat())
    when = datetime.combine(date, crawl_time(automation.defs.resolve_schedule_def("daily_crawl").cron_schedule))
    runs = automation.tick_schedule("daily_crawl", when)
    for run in runs:
        report.run_ids.append(run.result.run_id)
        if not run.result.success:
            raise PipelineError(f"the crawl run {run.result.run_id} failed: {_first_failure(run.result)}")
        crawl = _metadata(run.result, "scraped_batch")
        report.scraped, report.crawl_rejects = crawl["listings"], crawl["rejects"]
        report.pages, report.pages_per_second = crawl["pages"], crawl["pages_per_second"]
    for run in automation.tick_sensor("landing_sensor"):
        report.run_ids.append(run.result.run_id)
        _report_batch(report, automation.settings, run)
    for run in automation.tick_sensor("retraining_sensor"):
        report.run_ids.append(run.result.run_id)
        _report_training(report, run)
    report.seconds = time.perf_counter() - started
    return _finish(report, automation.settings)


def run_days(settings: Settings, days: int = 1, progress: Progress = print) -> list[DayReport]:
    """Simulate ``days`` market days ending on the configured market day, one line of progress per run."""
    if days < 1:
        raise ValueError(f"days must be at least 1, got {days}")
    first = settings.market_day - days + 1
    newest = newest_listing_date(settings)
    if newest is not None and newest > market_date(first):
        ahead = (newest - MarketConfig.start_date).days
        raise ValueError(f"the warehouse already holds listings from {newest} (market day {ahead}); the market "
                         f"only moves forward, so simulated days must start on or after it: use --day "
                         f"{ahead + days - 1} or later, or another --data-dir")
    automation = Automation(settings, progress)
    reports = []
    for day in range(settings.market_day - days + 1, settings.market_day + 1):
        progress(f"day {day} ({market_date(day)}):")
        reports.append(simulate_day(automation, day))
        if days > 1:
            progress("  " + reports[-1].line())
    return reports


def newest_listing_date(settings: Settings):
    """The newest listing date in the warehouse's admitted and quarantined batches (None when it has none)."""
    from carprice.warehouse import Warehouse

    if not settings.warehouse_path.exists():
        return None
    newest = Warehouse(settings.warehouse_path).query("SELECT max(listed_at) AS d FROM raw_listings").iloc[0]["d"]
    return None if newest is None or newest != newest else datetime.fromisoformat(str(newest)[:10]).date()


def process_batch(settings: Settings, batch_id: str, progress: Progress = print) -> DayReport:
    """Run batch_job for one landed batch, then tick the retraining sensor (after a re-admission or a file import).

    The landing sensor would skip a batch processed before (a re-admitted one), so the run is launched here.
    """
    from carprice.defs.partitions import batch_partitions

    automation = Automation(settings, progress)
    report = DayReport(day=settings.market_day, date=market_date(settings.market_day).isoformat(), batch_id=batch_id)
    started = time.perf_counter()
    # A re-admitted batch was materialized before, so the landing sensor would not pick it up again.
    if not automation.instance.has_dynamic_partition(batch_partitions.name, batch_id):
        automation.instance.add_dynamic_partitions(batch_partitions.name, [batch_id])
    run = automation.launch("carprice", dg.RunRequest(partition_key=batch_id), "batch_job", {})
    report.run_ids.append(run.result.run_id)
    _report_batch(report, settings, run)
    for training in automation.tick_sensor("retraining_sensor"):
        report.run_ids.append(training.result.run_id)
        _report_training(report, training)
    report.seconds = time.perf_counter() - started
    return _finish(report, settings)


def revalue(settings: Settings) -> int:
    """Run valuation_job: value current listings with the champion, list deals, publish; returns rows valued."""
    automation = Automation(settings, progress=lambda _: None)
    run = automation.launch("carprice", dg.RunRequest(), "valuation_job", {})
    if not run.result.success:
        raise PipelineError(f"valuation run {run.result.run_id} failed: {_first_failure(run.result)}")
    return int(_metadata(run.result, "listing_valuations")["dagster/row_count"])
