"""Stage 6: each admitted batch against the serving model (Evidently): drift, quality, and retraining triggers."""

import dataclasses

import dagster as dg

from carprice.config import MonitoringConfig
from carprice.defs.ingest import raw_listings
from carprice.defs.metadata import OWNERS, layer
from carprice.defs.partitions import batch_partitions
from carprice.defs.resources import AlertsResource, ReportsResource, WarehouseResource
from carprice.defs.valuation import listing_valuations
from carprice.monitoring.batch import MONITORED, BatchMonitoring, MonitoringError, monitor_admitted_batch
from carprice.monitoring.drift import MonitoringSummary


class MonitoringRunConfig(dg.Config):
    """Threshold overrides for this run's monitoring (names as in carprice.config.MonitoringConfig)."""

    overrides: dict[str, float] = {}


def column_table(summary: MonitoringSummary) -> str:
    """Per-column drift as a Markdown table, most drifted first."""
    rows = ["| column | method | score | drifted |", "|---|---|---:|---|"]
    for column, s in sorted(summary.column_scores.items(), key=lambda kv: -(kv[1]["score"] or 0)):
        score = "skipped" if s["score"] is None else f"{s['score']:.3f}"
        rows.append(f"| {column} | {s['method']} | {score} | {'yes' if s['drifted'] else 'no'} |")
    return "\n".join(rows)


def monitoring_metadata(outcome: BatchMonitoring, reports: ReportsResource) -> dict:
    """What the UI shows of one batch's monitoring; the retraining sensor reads the trigger keys."""
    metadata = {"status": outcome.status if outcome.status == MONITORED else f"{outcome.status}: {outcome.note}",
                "retrain_requested": bool(outcome.triggers),
                "trigger_kinds": ",".join(kind for kind, _ in outcome.triggers),
                "trigger_reasons": dg.MetadataValue.json([reason for _, reason in outcome.triggers])}
    summary = outcome.summary
    if summary is None:
        return metadata
    metadata.update({
        "model_version": outcome.model_version, "drift_share": round(summary.drift_share, 4),
        "drifted_columns": summary.drifted_columns, "n_columns": summary.n_columns,
        "prediction_drift_score": round(summary.prediction_drift_score, 4),
        "target_drift_score": round(summary.target_drift_score, 4), "n_current": summary.n_current,
        "n_fresh": summary.n_fresh, "column_drift": dg.MetadataValue.md(column_table(summary)),
        "report_url": dg.MetadataValue.url(reports.url_of(summary.report_path)),
        "report_path": dg.MetadataValue.path(str(summary.report_path))})
    if summary.quality_report_path is not None:
        metadata["quality_report_url"] = dg.MetadataValue.url(reports.url_of(summary.quality_report_path))
    for key in ("mae_eur", "mape", "reference_mape", "decay"):
        if getattr(summary, key) is not None:
            metadata[key] = round(float(getattr(summary, key)), 4)
    return metadata


@dg.asset(
    partitions_def=batch_partitions,
    deps=[raw_listings, listing_valuations],
    group_name="monitoring",
    owners=OWNERS,
    tags=layer("monitoring"),
    kinds={"evidently", "duckdb"},
    pool="warehouse",
)
def batch_monitoring(context: dg.AssetExecutionContext, config: MonitoringRunConfig, warehouse: WarehouseResource,
                     reports: ReportsResource, alerts: AlertsResource) -> dg.MaterializeResult:
    """Evidently reports of one accepted batch: drift against the champion's training data, the champion's
    error on listings it never saw, drift of its predictions; drift or decay requests retraining."""
    wh = warehouse.get()
    try:
        cfg = dataclasses.replace(MonitoringConfig(), **config.overrides)
    except TypeError as exc:
        raise dg.Failure(f"unknown monitoring setting: {exc}") from exc
    try:
        outcome = monitor_admitted_batch(wh, context.partition_key, cfg, reports.root)
    except MonitoringError as exc:
        raise dg.Failure(str(exc)) from exc
    if outcome.alerts:
        alerts.send(wh, outcome.alerts, context.log, context.run.run_id)
    summary = outcome.summary
    if summary is not None:
        context.log.info("%s: %d/%d columns drifted, prediction drift %.3f, MAPE on %d new listings %s",
                         outcome.batch_id, summary.drifted_columns, summary.n_columns, summary.prediction_drift_score,
                         summary.n_fresh, f"{summary.mape:.1%}" if summary.mape is not None else "not judged")
    return dg.MaterializeResult(metadata=monitoring_metadata(outcome, reports))
