"""The simulated clock: market days run one after the other through the definitions' schedule and sensors.

Each simulated day ticks the daily crawl schedule at its cron time on that day's date, then the landing and
retraining sensors, and reports what happened. ``carprice run`` is one simulated day; ``carprice run --days N``
is N. The market only moves forward: days before the warehouse's newest listing are refused. A batch landed
by hand (a file import, a re-admission) is processed as part of the configured market day.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from datetime import time as clock_time

import dagster as dg

from carprice.config import Settings, market_date, market_day
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
    report = DayReport(day=day, date=date.isoformat(), settings=automation.settings)
    when = datetime.combine(date, crawl_time(automation.defs.resolve_schedule_def("daily_crawl").cron_schedule))
    runs = automation.tick_schedule("daily_crawl", when)
    for run in runs:
        report.run_ids.append(run.result.run_id)
        if not run.result.success:
            raise PipelineError(f"the crawl run {run.result.run_id} failed: {first_failure(run.result)}")
        crawl = materialization_metadata(run.result, "scraped_batch")
        report.scraped, report.crawl_rejects = crawl["listings"], crawl["rejects"]
        report.pages, report.pages_per_second = crawl["pages"], crawl["pages_per_second"]
    return _batches_then_training(automation, report, automation.tick_sensor("landing_sensor"), started)


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
