"""Stage 2: copy one landed batch into the warehouse unchanged, and validate it before anything uses it."""

import dataclasses

import dagster as dg

from carprice.config import MonitoringConfig, ValidationConfig
from carprice.defs.metadata import OWNERS, layer, percent, schema_metadata
from carprice.defs.partitions import batch_partitions
from carprice.defs.resources import AlertsResource, LandingZoneResource, ReportsResource, WarehouseResource
from carprice.defs.scraping import scraped_batch
from carprice.defs.validation import RAW_LISTINGS_CHECKS, check_result
from carprice.ingest.landing import BatchError, find_batch
from carprice.ingest.store import RAW_COLUMNS, batch_market_days, ingest_batch, top_reject_reasons
from carprice.money.rates import RatesError
from carprice.monitoring.pages import write_pages
from carprice.validation.admission import ADMITTED, one_line_reason, quarantine_alerts, validate_batch
from carprice.validation.store import QUARANTINED, failed_checks, status_of
from carprice.warehouse import Warehouse


class ValidationRunConfig(dg.Config):
    """Threshold overrides for this run's checks (names as in carprice.config.ValidationConfig)."""

    overrides: dict[str, float] = {}


@dg.asset(
    partitions_def=batch_partitions,
    deps=[dg.AssetDep(scraped_batch, partition_mapping=dg.AllPartitionMapping())],
    check_specs=RAW_LISTINGS_CHECKS,
    group_name="ingestion",
    owners=OWNERS,
    tags=layer("raw"),
    kinds={"duckdb"},
    pool="warehouse",
)
def raw_listings(context: dg.AssetExecutionContext, config: ValidationRunConfig, warehouse: WarehouseResource,
                 landing_zone: LandingZoneResource, alerts: AlertsResource,
                 reports: ReportsResource) -> dg.MaterializeResult:
    """Listings and rejects of one batch exactly as scraped, validated; a failing batch is quarantined."""
    try:
        batch = find_batch(landing_zone.root, context.partition_key)
        cfg = dataclasses.replace(ValidationConfig(), **config.overrides)
        money = warehouse.money()
    except (BatchError, TypeError, RatesError) as exc:
        raise dg.Failure(str(exc)) from exc
    wh = warehouse.get()
    counts = ingest_batch(wh, batch)
    verdict = validate_batch(wh, batch, cfg, money)
    if not verdict.admitted:
        alerts.send(wh, quarantine_alerts(verdict), context.log, context.run.run_id)
    # The reports index lists every verdict, quarantines included (monitoring never runs for those).
    write_pages(wh, reports.root, MonitoringConfig().coverage_tolerance, warehouse.market_currency)
    top = top_reject_reasons(wh, batch.batch_id)
    status = verdict.status
    if not verdict.admitted:
        status = f"{verdict.status}: {one_line_reason({o.name: o.failures for o in verdict.failed})}"
        context.log.warning("batch %s %s", batch.batch_id, status)
    return dg.MaterializeResult(
        metadata={
            "status": status, "batch_id": batch.batch_id, "source": batch.source,
            "market_day": _market_day(wh, batch.batch_id),
            "dagster/row_count": counts["listings"], **schema_metadata(RAW_COLUMNS), "rejects": counts["rejects"],
            "reject_rate_pct": percent(verdict.profile["reject_rate"], 2),
            "top_reject_reasons": dg.MetadataValue.md(top.to_markdown(index=False) if not top.empty else "none"),
            "reference_version": str(verdict.reference_id) if verdict.reference_id is not None else "none",
        },
        check_results=[check_result(o, verdict) for o in verdict.outcomes],
    )


def _market_day(wh: Warehouse, batch_id: str) -> str:
    day = batch_market_days(wh).get(batch_id)
    return day.isoformat() if day else "unknown"


def gate_outcome(wh: Warehouse, batch_id: str) -> tuple[bool, str]:
    """Whether the batch goes on (admitted) and the status line the UI shows for it ("quarantined: <why>")."""
    status = status_of(wh, batch_id)
    if status in ADMITTED:
        return True, status
    if status == QUARANTINED:
        return False, f"{QUARANTINED}: {one_line_reason(failed_checks(wh, batch_id))}"
    return False, f"not validated: {status or 'no verdict'}"


@dg.asset(
    partitions_def=batch_partitions,
    deps=[raw_listings],
    output_required=False,
    group_name="ingestion",
    owners=OWNERS,
    tags=layer("raw"),
    kinds={"duckdb"},
    pool="warehouse",
)
def admitted_batch(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    """The batch as admitted (its checks passed, or a person re-admitted it): only these go on to cleaning and
    monitoring; a quarantined batch stops here, and its run still succeeds."""
    admitted, status = gate_outcome(warehouse.get(), context.partition_key)
    if admitted:
        yield dg.MaterializeResult(metadata={"status": status, "batch_id": context.partition_key})
        return
    context.log.warning("batch %s stops here: %s", context.partition_key, status)
    # Missing partitions downstream say nothing by themselves: each records why it was not made.
    for asset in ("admitted_batch", "batch_monitoring"):
        context.log_event(dg.AssetObservation(asset_key=asset, partition=context.partition_key, metadata={
            "status": status, "batch_id": context.partition_key}))
