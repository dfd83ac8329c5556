"""Automation: a crawl schedule per source (its cron in sources.toml), a sensor that processes each batch as it
lands, and a sensor that retrains when the cadence is reached or a batch's monitoring asks for it.

Sensors read only the landing zone and Dagster's own event log, never the warehouse: DuckDB lets no
other process open the file while a run writes it.
"""

import json

import dagster as dg

from carprice.config import RetrainingConfig, SourceConfig
from carprice.defs.ingest import raw_listings
from carprice.defs.jobs import batch_job, crawl_job, training_job
from carprice.defs.monitoring import batch_monitoring, trigger_reasons
from carprice.defs.partitions import add_source_partitions, batch_partitions
from carprice.defs.resources import LandingZoneResource
from carprice.defs.training import challenger_model
from carprice.ingest.landing import scan_landing
from carprice.monitoring.retraining import (
    TRIGGER_KIND_TAG,
    TRIGGER_REASON_TAG,
    MonitoredBatch,
    training_due,
    training_wait,
)


def crawl_schedule(source: SourceConfig) -> dg.ScheduleDefinition:
    """The schedule that crawls ``source`` on its cron (UTC): the embedded marketplace as it is on the tick's date,
    a real site as it is."""
    if not source.schedule:
        raise ValueError(f"source {source.name} has no schedule: it is crawled on demand")

    @dg.schedule(name=source.schedule_name, job=crawl_job, cron_schedule=source.schedule,
                 execution_timezone="UTC", default_status=dg.DefaultScheduleStatus.RUNNING,
                 description=f"Crawl {source.name} ({source.schedule}, UTC), as sources.toml says.",
                 tags={"carprice/source": source.name})
    def _crawl(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        when = context.scheduled_execution_time
        add_source_partitions(context.instance, [source.name])  # a source added since the installation started
        return dg.RunRequest(run_key=f"{source.name}-{when:%Y%m%dT%H%M}", partition_key=source.name,
                             run_config={"ops": {"scraped_batch": {"config": {"as_of": f"{when:%Y-%m-%d}"}}}})

    return _crawl


# A batch whose runs ended this often without ingesting it (killed, crashed) is left for a person.
MAX_BATCH_ATTEMPTS = 3


def batch_run_key(batch_id: str, runs: list[dg.DagsterRun], requested: bool) -> str | None:
    """The run key of the next attempt at a landed batch not yet ingested, given its batch_job runs so far and
    whether this sensor already asked for a first run; None while a run is asked for or under way, or when the
    attempts are used up."""
    if (requested and not runs) or any(not run.is_finished for run in runs) or len(runs) >= MAX_BATCH_ATTEMPTS:
        return None
    return batch_id if not runs else f"{batch_id}@{len(runs) + 1}"


@dg.sensor(job=batch_job, minimum_interval_seconds=15, default_status=dg.DefaultSensorStatus.RUNNING)
def landing_sensor(context: dg.SensorEvaluationContext, landing_zone: LandingZoneResource) -> dg.SensorResult:
    """Each complete batch in the landing zone that is not ingested yet becomes a batch_job run for its partition.

    A batch is done once raw_listings is materialized for it (it then has a status, accepted or quarantined);
    one whose run ended without that (killed, crashed) is tried again under a new run key, up to
    MAX_BATCH_ATTEMPTS runs. The cursor holds the folders already seen, so an unreadable one is reported once.
    """
    seen = set(json.loads(context.cursor)) if context.cursor else set()
    batches, broken = scan_landing(landing_zone.root)
    for path, reason in broken.items():
        if path not in seen:
            context.log.warning("skipping unreadable batch folder %s: %s", path, reason)
    done = context.instance.get_materialized_partitions(raw_listings.key)
    todo = {}
    for batch in (b for b in batches if b.batch_id not in done):
        runs = context.instance.get_runs(filters=dg.RunsFilter(job_name=batch_job.name,
                                                               tags={"dagster/partition": batch.batch_id}))
        key = batch_run_key(batch.batch_id, list(runs), requested=batch.batch_id in seen)
        if key is not None:
            todo[batch.batch_id] = key
    known = set(context.instance.get_dynamic_partitions(batch_partitions.name))
    cursor = json.dumps(sorted(seen | {b.batch_id for b in batches} | set(broken)))
    if not todo:
        return dg.SensorResult(skip_reason=dg.SkipReason("no new batch in the landing zone"), cursor=cursor)
    return dg.SensorResult(
        run_requests=[dg.RunRequest(run_key=key, partition_key=batch_id) for batch_id, key in todo.items()],
        dynamic_partitions_requests=[batch_partitions.build_add_request([b for b in todo if b not in known])],
        cursor=cursor,
    )


def _monitored_since_last_training(instance: dg.DagsterInstance) -> list[MonitoredBatch]:
    last = instance.fetch_materializations(challenger_model.key, limit=1).records
    after = last[0].storage_id if last else None
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=batch_monitoring.key, after_storage_id=after), limit=10_000,
        ascending=True).records
    out = []
    for record in records:
        materialization = record.asset_materialization
        meta = {k: v.value for k, v in materialization.metadata.items()} if materialization else {}
        out.append(MonitoredBatch(batch_id=record.partition_key or "", retrain_requested=bool(
            meta.get("retrain_requested", False)), reasons=tuple(trigger_reasons(meta.get("trigger_reasons"))),
            kinds=tuple(k for k in str(meta.get("trigger_kinds", "")).split(",") if k), record=record.storage_id))
    return out


@dg.sensor(job=training_job, minimum_interval_seconds=15, default_status=dg.DefaultSensorStatus.RUNNING)
def retraining_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
    """Train when batches monitored since the last training ask for it (no model, drift, decay), or on cadence.

    The run key names the newest monitoring record: the daemon never starts two trainings for the same
    evidence, and a failed training is retried when the next batch has been monitored.
    """
    monitored = _monitored_since_last_training(context.instance)
    cfg = RetrainingConfig()
    request = training_due(monitored, cfg)
    if request is None:
        return dg.SensorResult(skip_reason=dg.SkipReason(training_wait(monitored, cfg)))
    context.log.info("requesting training (%s): %s", request.kind, request.reason)
    return dg.SensorResult(run_requests=[dg.RunRequest(run_key=request.run_key, tags={
        TRIGGER_KIND_TAG: request.kind, TRIGGER_REASON_TAG: request.reason[:2000]})])
