"""Automation: a daily crawl per source, and a sensor that processes each batch as it lands."""

import json

import dagster as dg

from carprice.config import SOURCES
from carprice.defs.ingestion import raw_listings
from carprice.defs.jobs import batch_job, crawl_job
from carprice.defs.partitions import batch_partitions
from carprice.defs.resources import LandingZoneResource
from carprice.landing import scan_landing


@dg.schedule(job=crawl_job, cron_schedule="0 6 * * *", default_status=dg.DefaultScheduleStatus.RUNNING)
def daily_crawl(context: dg.ScheduleEvaluationContext):
    """Crawl every configured source once a day."""
    for source in SOURCES:
        yield dg.RunRequest(run_key=f"{source}-{context.scheduled_execution_time:%Y%m%d}", partition_key=source)


@dg.sensor(job=batch_job, minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING)
def landing_sensor(context: dg.SensorEvaluationContext, landing_zone: LandingZoneResource) -> dg.SensorResult:
    """Each new complete batch in the landing zone becomes one batch_job run for its partition.

    The cursor holds every batch (and unreadable folder) already seen, so a restart neither misses
    nor repeats one; batches already ingested by hand (``carprice run``) are not run again.
    """
    seen = set(json.loads(context.cursor)) if context.cursor else set()
    batches, broken = scan_landing(landing_zone.root)
    for path, reason in broken.items():
        if path not in seen:
            context.log.warning("skipping unreadable batch folder %s: %s", path, reason)
    fresh = [b for b in batches if b.batch_id not in seen]
    done = context.instance.get_materialized_partitions(raw_listings.key)
    todo = [b.batch_id for b in fresh if b.batch_id not in done]
    known = set(context.instance.get_dynamic_partitions(batch_partitions.name))
    cursor = json.dumps(sorted(seen | {b.batch_id for b in fresh} | set(broken)))
    if not todo:
        return dg.SensorResult(skip_reason=dg.SkipReason("no new batch in the landing zone"), cursor=cursor)
    return dg.SensorResult(
        run_requests=[dg.RunRequest(run_key=batch_id, partition_key=batch_id) for batch_id in todo],
        dynamic_partitions_requests=[batch_partitions.build_add_request([b for b in todo if b not in known])],
        cursor=cursor,
    )
