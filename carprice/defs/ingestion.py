"""Stage 2: copy one landed batch into the warehouse unchanged, and validate it before anything uses it."""

import dataclasses

import dagster as dg

from carprice.alerts import Alert
from carprice.config import ValidationConfig
from carprice.defs.partitions import batch_partitions
from carprice.defs.resources import AlertsResource, LandingZoneResource, WarehouseResource
from carprice.defs.scraping import scraped_batch
from carprice.landing import BatchError, find_batch
from carprice.validation.admission import Verdict, validate_batch
from carprice.validation.checks import ALL_CHECKS, Outcome

_CHECK_DESCRIPTIONS = {
    "landed_columns_match_contract": "The landed file has the contract's columns, with their types.",
    "source_fields_match_reference": "Pages carry the schema.org fields the reference batches carried, with the same types.",
    "values_within_contract": "Ranges, null rates, duplicates, reposts and spider rejects stay within their limits.",
    "units_and_currencies_consistent": "Prices and mileages are on the reference's scale; no unseen currency.",
    "distributions_match_reference": "Key fields have not drifted from the reference (PSI, Wasserstein).",
}


class ValidationRunConfig(dg.Config):
    """Threshold overrides for this run's checks (names as in carprice.config.ValidationConfig)."""

    overrides: dict[str, float] = {}


def _check_result(outcome: Outcome, verdict: Verdict) -> dg.AssetCheckResult:
    """A check's verdict for Dagster: failed checks block downstream unless a person re-admitted the batch."""
    metadata = {"summary": dg.MetadataValue.text(outcome.summary),
                "failures": dg.MetadataValue.md("\n".join(f"- {f}" for f in outcome.failures) or "none"),
                "evidence": dg.MetadataValue.json(outcome.metrics),
                "batch_id": verdict.batch_id,
                "reference_version": str(verdict.reference_id) if verdict.reference_id is not None else "none"}
    if not outcome.passed and verdict.status == "readmitted":
        metadata["readmitted_by"] = verdict.review["reviewer"] if verdict.review else ""
        return dg.AssetCheckResult(check_name=outcome.name, passed=True, severity=dg.AssetCheckSeverity.WARN,
                                   metadata=metadata, description="failed, then re-admitted after review")
    return dg.AssetCheckResult(check_name=outcome.name, passed=outcome.passed,
                               severity=dg.AssetCheckSeverity.ERROR, metadata=metadata)


def quarantine_alerts(verdict: Verdict) -> list[Alert]:
    """One alert per failed check, and one for the quarantined batch saying how to let it through."""
    failed = [Alert("check_failed", verdict.batch_id, f"{o.name} failed: {o.summary}",
                    details={"check": o.name, "failures": o.failures}) for o in verdict.failed]
    names = ", ".join(o.name for o in verdict.failed)
    return failed + [Alert("batch_quarantined", verdict.batch_id,
                           f"quarantined ({names}); nothing downstream uses it. After review: "
                           f"carprice batches readmit {verdict.batch_id} --by NAME --note WHY",
                           severity="error", details={"failed_checks": [o.name for o in verdict.failed]})]


@dg.asset(
    partitions_def=batch_partitions,
    deps=[dg.AssetDep(scraped_batch, partition_mapping=dg.AllPartitionMapping())],
    # Checks are not partitioned (that is a preview feature in Dagster 1.13); each evaluation names its batch.
    check_specs=[dg.AssetCheckSpec(name, asset="raw_listings", blocking=True, description=_CHECK_DESCRIPTIONS[name])
                 for name in ALL_CHECKS],
    group_name="ingestion",
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
    counts = wh.ingest_batch(batch)
    verdict = validate_batch(wh, batch, cfg)
    if not verdict.admitted:
        alerts.send(wh, quarantine_alerts(verdict), context.log, context.run.run_id)
    top = wh.query("SELECT reason, count(*) AS n FROM raw_rejects WHERE batch_id = ? GROUP BY reason "
                   "ORDER BY n DESC LIMIT 10", [batch.batch_id])
    return dg.MaterializeResult(
        metadata={
            "batch_id": batch.batch_id,
            "source": batch.source,
            "status": verdict.status,
            "dagster/row_count": counts["listings"],
            "rejects": counts["rejects"],
            "reject_rate": round(verdict.profile["reject_rate"], 4),
            "top_reject_reasons": dg.MetadataValue.md(top.to_markdown(index=False) if not top.empty else "none"),
            "reference_version": str(verdict.reference_id) if verdict.reference_id is not None else "none",
        },
        check_results=[_check_result(o, verdict) for o in verdict.outcomes],
    )
