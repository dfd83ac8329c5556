"""The simulated clock: market days run one after the other through the definitions' schedules and sensors.

Each simulated day ticks each source's crawl schedule at its first cron time on that day's date (a source whose
schedule does not fire that day is not crawled), then the landing and retraining sensors, and reports what
happened. ``carprice run`` is one simulated day; ``carprice run --days N`` is N. The market only moves forward:
days before the warehouse's newest listing are refused. A batch landed by hand (a file import, a re-admission)
is processed as part of the configured market day.
"""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta

import dagster as dg

from carprice.config import CRAWL_SCHEDULE_PREFIX, Settings, market_date, market_day
from carprice.ingest.store import newest_listing_date
from carprice.runs.launcher import (
    Automation,
    LaunchedRun,
    PipelineError,
    Progress,
    first_failure,
    materialization_metadata,
)
from carprice.runs.reports import DayReport, finish_report, report_batch, report_training


def first_tick(cron: str, day: date) -> datetime | None:
    """The first time on ``day`` (UTC) a cron schedule fires, or None when it does not fire that day."""
    from dagster._utils.schedules import cron_string_iterator

    midnight = datetime.combine(day, datetime.min.time(), tzinfo=UTC)
    when = next(cron_string_iterator(midnight.timestamp() - 1, cron, "UTC"))
    return when if when < midnight + timedelta(days=1) else None


def simulate_day(automation: Automation, day: int) -> DayReport:
    """One simulated market day: the crawl schedules' ticks, then the landing and retraining sensors.

    A crawl that fails (a site down, a crawl that landed nothing) is reported and the day goes on: the other
    sources' batches, and the empty batch itself, which validation quarantines, are still processed."""
    started = time.perf_counter()
    report = DayReport(day=day, date=market_date(day).isoformat(), settings=automation.settings)
    ticks = sorted((when, schedule.name) for schedule in automation.defs.schedules
                   if schedule.name.startswith(CRAWL_SCHEDULE_PREFIX)
                   and (when := first_tick(schedule.cron_schedule, market_date(day))) is not None)
    for when, name in ticks:
        for run in automation.tick_schedule(name, when):
            _report_crawl(automation, report, run)
    return _batches_then_training(automation, report, automation.tick_sensor("landing_sensor"), started)


def crawl_now(settings: Settings, source_name: str, progress: Progress = print) -> DayReport:
    """One crawl of ``source_name`` now (`carprice crawl --source`), then its batch processed as a scheduled one's:
    the landing sensor, then the retraining sensor. The embedded marketplace shows the configured market day."""
    from carprice.sources import load_sources

    sources = load_sources(settings.layout.sources_path)
    if source_name not in sources:
        raise ValueError(f"unknown source {source_name!r}: {settings.layout.sources_path} configures "
                         f"{', '.join(sorted(sources))} (add one with `carprice sources add`)")
    if not sources[source_name].enabled:
        raise ValueError(f"source {source_name} is disabled (enabled = false in {settings.layout.sources_path})")
    started = time.perf_counter()
    automation = Automation(settings, progress)
    report = DayReport(day=settings.market_day, date=market_date(settings.market_day).isoformat(), settings=settings)
    as_of = {"ops": {"scraped_batch": {"config": {"as_of": market_date(settings.market_day).isoformat()}}}}
    _report_crawl(automation, report, automation.launch(
        "carprice crawl", dg.RunRequest(partition_key=source_name, run_config=as_of), "crawl_job", {}))
    return _batches_then_training(automation, report, automation.tick_sensor("landing_sensor"), started)


def _report_crawl(automation: Automation, report: DayReport, run: LaunchedRun) -> None:
    """Add a crawl run's figures to the day's report; a failed crawl is an error of the day, not its end."""
    report.run_ids.append(run.result.run_id)
    if not run.result.success:
        error = f"the crawl run {run.result.run_id} failed: {first_failure(run.result)}"
        automation.progress(f"    ERROR: {error}")
        report.errors.append(error)
        return
    crawl = materialization_metadata(run.result, "scraped_batch")
    report.scraped += crawl["listings"]
    report.crawl_rejects += crawl["rejects"]
    report.pages += crawl["pages"]
    report.pages_per_second = crawl["pages_per_second"]


def _batches_then_training(automation: Automation, report: DayReport, batch_runs: list[LaunchedRun],
                           started: float) -> DayReport:
    """Report the batch runs, then tick the retraining sensor and report the training it starts, if any."""
    for run in batch_runs:
        report.run_ids.append(run.result.run_id)
        # One batch whose run failed must not keep the day's other batches and training from being reported;
        # the landing sensor tries it again, and the command's exit status says something failed.
        try:
            report_batch(report, run)
        except PipelineError as exc:
            automation.progress(f"    ERROR: {exc}")
            report.errors.append(str(exc))
    for run in automation.tick_sensor("retraining_sensor"):
        report.run_ids.append(run.result.run_id)
        report_training(report, run)
    report.training_wait = automation.skipped.get("retraining_sensor", "")
    report.seconds = time.perf_counter() - started
    return finish_report(report)


def check_market_moves_forward(settings: Settings, first_day: int, days: int) -> None:
    """Refuse to simulate days that start before the newest listing already in the warehouse."""
    from carprice.warehouse import Warehouse

    if not settings.warehouse_path.exists():
        return
    newest = newest_listing_date(Warehouse(settings.warehouse_path))
    if newest is not None and newest > market_date(first_day):
        ahead = market_day(newest)
        raise ValueError(f"the warehouse already holds listings from {newest} (market day {ahead}); the market "
                         f"only moves forward, so simulated days must start on or after it: use --day "
                         f"{ahead + days - 1} or later, or another --data-dir")


def run_days(settings: Settings, days: int = 1, progress: Progress = print) -> list[DayReport]:
    """Simulate ``days`` market days ending on the configured market day, one line of progress per run."""
    if days < 1:
        raise ValueError(f"days must be at least 1, got {days}")
    first = settings.market_day - days + 1
    check_market_moves_forward(settings, first, days)
    automation = Automation(settings, progress)
    reports = []
    for day in range(first, settings.market_day + 1):
        progress(f"day {day} ({market_date(day)}):")
        reports.append(simulate_day(automation, day))
        if days > 1:
            progress("  " + reports[-1].line())
    return reports


def process_batch(settings: Settings, batch_id: str, progress: Progress = print) -> DayReport:
    """Run batch_job for one landed batch, then tick the retraining sensor (after a re-admission or a file import).

    The landing sensor would skip a batch processed before (a re-admitted one), so the run is launched here.
    """
    from carprice.defs.partitions import batch_partitions

    automation = Automation(settings, progress)
    report = DayReport(day=settings.market_day, date=market_date(settings.market_day).isoformat(),
                       settings=settings, batch_id=batch_id)
    started = time.perf_counter()
    # A re-admitted batch was materialized before, so the landing sensor would not pick it up again.
    if not automation.instance.has_dynamic_partition(batch_partitions.name, batch_id):
        automation.instance.add_dynamic_partitions(batch_partitions.name, [batch_id])
    run = automation.launch("carprice", dg.RunRequest(partition_key=batch_id), "batch_job", {})
    return _batches_then_training(automation, report, [run], started)
