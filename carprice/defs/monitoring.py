"""Stage 6: each admitted batch against the serving model (Evidently): drift, quality, and retraining triggers."""

import dataclasses

import dagster as dg
import pandas as pd

from carprice.alerts import Alert
from carprice.config import MonitoringConfig
from carprice.defs.ingestion import raw_listings
from carprice.defs.partitions import batch_partitions
from carprice.defs.resources import AlertsResource, ReportsResource, WarehouseResource
from carprice.defs.valuation import listing_valuations
from carprice.modeling import ModelArtifactError, load_model
from carprice.monitoring import REFERENCE_FILE, MonitoringSummary, monitor_batch
from carprice.registry import NoChampionError, champion
from carprice.monitoring_store import batch_listings, store_report
from carprice.retraining import NO_CHAMPION, NO_REFERENCE, record_requests
from carprice.validation.admission import ADMITTED


class MonitoringRunConfig(dg.Config):
    """Threshold overrides for this run's monitoring (names as in carprice.config.MonitoringConfig)."""

    overrides: dict[str, float] = {}


def _column_table(summary: MonitoringSummary) -> str:
    rows = ["| column | method | score | drifted |", "|---|---|---:|---|"]
    for column, s in sorted(summary.column_scores.items(), key=lambda kv: -(kv[1]["score"] or 0)):
        score = "skipped" if s["score"] is None else f"{s['score']:.3f}"
        rows.append(f"| {column} | {s['method']} | {score} | {'yes' if s['drifted'] else ''} |")
    return "\n".join(rows)


@dg.asset(
    partitions_def=batch_partitions,
    deps=[raw_listings, listing_valuations],
    group_name="monitoring",
    kinds={"evidently", "duckdb"},
    pool="warehouse",
)
def batch_monitoring(context: dg.AssetExecutionContext, config: MonitoringRunConfig, warehouse: WarehouseResource,
                     reports: ReportsResource, alerts: AlertsResource) -> dg.MaterializeResult:
    """Evidently reports of one accepted batch: drift against the champion's training data, the champion's
    error on listings it never saw, drift of its predictions; drift or decay requests retraining."""
    wh = warehouse.get()
    batch_id = context.partition_key
    status = wh.query("SELECT status FROM batch_status WHERE batch_id = ?", [batch_id])
    if status.empty or status.iloc[0]["status"] not in ADMITTED:
        raise dg.Failure(f"batch {batch_id} is {'not validated' if status.empty else status.iloc[0]['status']}: "
                         "only admitted batches are monitored")
    try:
        cfg = dataclasses.replace(MonitoringConfig(), **config.overrides)
    except TypeError as exc:
        raise dg.Failure(f"unknown monitoring setting: {exc}") from exc
    try:
        serving = champion(wh)
    except NoChampionError:
        reason = "no champion model yet: the first one is trained from the admitted batches"
        record_requests(wh, batch_id, None, [(NO_CHAMPION, reason)])
        return dg.MaterializeResult(metadata={
            "status": "skipped: no champion yet", "retrain_requested": True, "trigger_kinds": NO_CHAMPION,
            "trigger_reasons": dg.MetadataValue.json([reason])})
    try:
        model = load_model(serving.artifact_path, expected_sha256=serving.sha256)
    except ModelArtifactError as exc:
        raise dg.Failure(f"cannot monitor with champion {serving.version}: {exc}") from exc
    reference_file = serving.artifact_path / REFERENCE_FILE
    if not reference_file.exists():
        # A champion without its training sample (saved before monitoring existed) cannot be compared
        # with; a new model brings one.
        reason = f"champion {serving.version} has no drift reference ({reference_file.name}): retrain to get one"
        record_requests(wh, batch_id, serving.version, [(NO_REFERENCE, reason)])
        return dg.MaterializeResult(metadata={
            "status": "skipped: champion has no reference", "retrain_requested": True,
            "trigger_kinds": NO_REFERENCE, "trigger_reasons": dg.MetadataValue.json([reason])})
    reference = pd.read_parquet(reference_file)
    current = batch_listings(wh, batch_id, serving.train_batches)
    if current.empty:
        raise dg.Failure(f"batch {batch_id} has no clean listings to monitor")
    reference["predicted_price_eur"] = model.predict_price(reference)
    current["predicted_price_eur"] = model.predict_price(current)
    folder = reports.root / batch_id
    summary = monitor_batch(reference, current, reference_quality=serving.metrics.get("evaluation", {}), cfg=cfg,
                            html_path=folder / "drift.html", quality_html_path=folder / "quality.html",
                            title=f"{batch_id} vs champion {serving.version}", fresh=current["fresh"])
    store_report(wh, batch_id, serving.version, summary)
    record_requests(wh, batch_id, serving.version, [(t.kind, t.reason) for t in summary.triggers])
    alerts.send(wh, [Alert(t.kind, batch_id, f"retraining requested: {t.reason}") for t in summary.triggers],
                context.log, context.run.run_id)
    metadata = {
        "status": "monitored",
        "model_version": serving.version,
        "drift_share": round(summary.drift_share, 4),
        "drifted_columns": summary.drifted_columns,
        "n_columns": summary.n_columns,
        "prediction_drift_score": round(summary.prediction_drift_score, 4),
        "target_drift_score": round(summary.target_drift_score, 4),
        "n_current": summary.n_current,
        "n_fresh": summary.quality_rows,
        "retrain_requested": bool(summary.triggers),
        "trigger_kinds": ",".join(t.kind for t in summary.triggers),
        "trigger_reasons": dg.MetadataValue.json([t.reason for t in summary.triggers]),
        "column_drift": dg.MetadataValue.md(_column_table(summary)),
        "report_url": dg.MetadataValue.url(reports.url_of(summary.report_path)),
        "report_path": dg.MetadataValue.path(str(summary.report_path)),
    }
    if summary.quality_report_path is not None:
        metadata["quality_report_url"] = dg.MetadataValue.url(reports.url_of(summary.quality_report_path))
    for key in ("mae_eur", "mape", "reference_mape", "decay"):
        value = getattr(summary, key)
        if value is not None:
            metadata[key] = round(float(value), 4)
    context.log.info("%s: %d/%d columns drifted, prediction drift %.3f, MAPE on %d new listings %s",
                     batch_id, summary.drifted_columns, summary.n_columns, summary.prediction_drift_score,
                     summary.quality_rows, f"{summary.mape:.1%}" if summary.mape is not None else "not judged")
    return dg.MaterializeResult(metadata=metadata)
