"""Stage 2: copy one landed batch into the warehouse unchanged, and validate it before anything uses it."""

import dataclasses

import dagster as dg

from carprice.config import ValidationConfig
from carprice.defs.metadata import OWNERS, layer, schema_metadata
from carprice.defs.partitions import batch_partitions
from carprice.defs.resources import AlertsResource, LandingZoneResource, WarehouseResource
from carprice.defs.scraping import scraped_batch
from carprice.defs.validation import RAW_LISTINGS_CHECKS, check_result
from carprice.ingest.landing import BatchError, find_batch
from carprice.ingest.store import RAW_COLUMNS, ingest_batch, top_reject_reasons
from carprice.validation.admission import quarantine_alerts, validate_batch


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
                 landing_zone: LandingZoneResource, alerts: AlertsResource) -> dg.MaterializeResult:
    """Listings and rejects of one batch exactly as scraped, validated; a failing batch is quarantined."""
    try:
        batch = find_batch(landing_zone.root, context.partition_key)
        cfg = dataclasses.replace(ValidationConfig(), **config.overrides)
    except (BatchError, TypeError) as exc:
        raise dg.Failure(str(exc)) from exc
    wh = warehouse.get()
    counts = ingest_batch(wh, batch)
    verdict = validate_batch(wh, batch, cfg)
    if not verdict.admitted:
        alerts.send(wh, quarantine_alerts(verdict), context.log, context.run.run_id)
    top = top_reject_reasons(wh, batch.batch_id)
    return dg.MaterializeResult(
        metadata={
            "batch_id": batch.batch_id, "source": batch.source, "status": verdict.status,
            "dagster/row_count": counts["listings"], **schema_metadata(RAW_COLUMNS), "rejects": counts["rejects"],
            "reject_rate": round(verdict.profile["reject_rate"], 4),
            "top_reject_reasons": dg.MetadataValue.md(top.to_markdown(index=False) if not top.empty else "none"),
            "reference_version": str(verdict.reference_id) if verdict.reference_id is not None else "none",
        },
        check_results=[check_result(o, verdict) for o in verdict.outcomes],
    )
