"""Stage 6: each admitted batch against the serving model (Evidently): drift, quality, and retraining triggers."""

import dataclasses

import dagster as dg

from carprice.config import MonitoringConfig
from carprice.defs.ingest import admitted_batch
from carprice.defs.metadata import (
    OWNERS,
    bullet_list,
    known,
    layer,
    markdown_table,
    money_text,
    percent,
    percent_text,
    whole_amount,
)
from carprice.defs.partitions import batch_partitions
from carprice.defs.resources import AlertsResource, ReportsResource, WarehouseResource
from carprice.defs.valuation import listing_valuations
from carprice.ingest.store import batch_market_days
from carprice.money.rates import BASE
from carprice.monitoring.batch import MONITORED, BatchMonitoring, MonitoringError, monitor_admitted_batch
from carprice.monitoring.drift import MonitoringSummary
from carprice.monitoring.pages import INDEX_PAGE, write_pages


class MonitoringRunConfig(dg.Config):
    """Threshold overrides for this run's monitoring (names as in carprice.config.MonitoringConfig)."""

    overrides: dict[str, float] = {}


def column_table(summary: MonitoringSummary) -> dg.TableMetadataValue:
    """Per-column drift as a table, most drifted first (skipped columns say why)."""
    records = []
    for column, s in sorted(summary.column_scores.items(), key=lambda kv: -(kv[1]["score"] or 0)):
        records.append(dg.TableRecord({
            "column": column, "method": s["method"],
            "score": None if s["score"] is None else round(float(s["score"]), 3),
            "threshold": round(float(s["threshold"]), 3),
            "drifted": "yes" if s["drifted"] else s.get("skipped", "no")}))
    return dg.MetadataValue.table(records=records, schema=dg.TableSchema(columns=[
        dg.TableColumn("column", "string"), dg.TableColumn("method", "string"), dg.TableColumn("score", "float"),
        dg.TableColumn("threshold", "float"), dg.TableColumn("drifted", "string")]))


def segment_table(segments: list[dict], currency: str = BASE) -> str:
    """The champion's error on new listings by segment, worst first, as Markdown."""
    return markdown_table(["by", "segment", "new listings", "MAE", "MAPE", "vs its own MAPE"], (
        [s["column"], s["segment"], s["n"], money_text(s["mae"], currency), percent_text(s["mape"]),
         percent_text(s.get("vs_model"), 0, signed=True)] for s in segments), right=[2, 3, 4, 5]) if segments \
        else "no segment with enough new listings"


def quality_line(summary: MonitoringSummary, currency: str = BASE) -> str:
    """The champion's error on new listings against its own evaluation, in one sentence."""
    line = (f"MAPE {percent_text(summary.mape)}, MAE {money_text(summary.mae, currency)} on {summary.n_fresh} listings "
            "new to the model")
    if known(summary.reference_mape):
        line += (f"; its own evaluation: MAPE {percent_text(summary.reference_mape)}, MAE "
                 f"{money_text(summary.reference_mae, currency)} (MAPE {percent_text(summary.decay, 0, signed=True)} "
                 "relative)")
    return line


def monitoring_metadata(outcome: BatchMonitoring, reports: ReportsResource, market_day: str = "unknown",
                        currency: str = BASE) -> dict:
    """What the UI shows of one batch's monitoring, rounded for reading (money in whole units, errors and shares in
    %); the retraining sensor reads the trigger keys, the run summary reads the numbers back with
    ``summary_numbers``."""
    metadata = {"status": outcome.status if outcome.status == MONITORED else f"{outcome.status}: {outcome.note}",
                "market_day": market_day,
                "retrain_requested": bool(outcome.triggers),
                "trigger_kinds": ",".join(kind for kind, _ in outcome.triggers),
                "trigger_reasons": dg.MetadataValue.md(bullet_list(reason for _, reason in outcome.triggers)),
                "reports_index": dg.MetadataValue.url(reports.url_of(reports.root / INDEX_PAGE))}
    summary = outcome.summary
    if summary is None:
        return metadata
    metadata.update({
        "model_version": outcome.model_version,
        "drift": f"{summary.drifted_columns} of {summary.n_columns} feature columns drifted",
        "drift_share_pct": percent(summary.drift_share),
        "prediction_drift_score": round(summary.prediction_drift_score, 3),
        "target_drift_score": round(summary.target_drift_score, 3), "n_current": summary.n_current,
        "n_fresh": summary.n_fresh, "column_drift": column_table(summary),
        "report_url": dg.MetadataValue.url(reports.url_of(summary.report_path)),
        "report_path": dg.MetadataValue.path(str(summary.report_path))})
    if summary.quality_report_path is not None:
        metadata["quality_report_url"] = dg.MetadataValue.url(reports.url_of(summary.quality_report_path))
    if known(summary.mape):
        metadata["quality"] = quality_line(summary, currency)
        metadata["mape_pct"] = percent(summary.mape)
    if known(summary.mae):
        metadata["mae"] = whole_amount(summary.mae)
        metadata["currency"] = currency
    if known(summary.reference_mape):
        metadata["model_eval_mape_pct"] = percent(summary.reference_mape)
    if known(summary.decay):
        metadata["decay_pct"] = percent(summary.decay)
    if summary.segment_errors:
        metadata["segment_errors"] = dg.MetadataValue.md(segment_table(summary.segment_errors, currency))
    return metadata


def summary_numbers(metadata: dict) -> dict:
    """The numbers of a batch_monitoring materialization (its metadata values) as plain fractions and lists:
    drift share, drifted and judged columns, prediction drift, MAPE, decay, the trigger reasons."""
    out = {k: v for k, v in metadata.items() if k in ("status", "report_url", "quality_report_url", "mae",
                                                       "prediction_drift_score", "n_fresh", "model_version")}
    out["trigger_reasons"] = trigger_reasons(metadata.get("trigger_reasons"))
    if metadata.get("drift_share_pct") is not None:
        drifted, _, rest = str(metadata["drift"]).partition(" of ")
        out.update(drift_share=metadata["drift_share_pct"] / 100, drifted_columns=int(drifted),
                   n_columns=int(rest.split()[0]))
    for key in ("mape", "decay"):
        if metadata.get(f"{key}_pct") is not None:
            out[key] = metadata[f"{key}_pct"] / 100
    return out


def trigger_reasons(value) -> list[str]:
    """The retraining reasons recorded in batch_monitoring's metadata: a Markdown list (older materializations:
    a JSON list)."""
    if isinstance(value, list | tuple):
        return [str(v) for v in value]
    if not value or value == "none":
        return []
    return [line.removeprefix("- ") for line in str(value).splitlines() if line.strip()]


@dg.asset(
    partitions_def=batch_partitions,
    deps=[admitted_batch, listing_valuations],
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
        outcome = monitor_admitted_batch(wh, context.partition_key, cfg, reports.root, warehouse.market_currency)
    except MonitoringError as exc:
        raise dg.Failure(str(exc)) from exc
    if outcome.alerts:
        alerts.send(wh, outcome.alerts, context.log, context.run.run_id)
    write_pages(wh, reports.root, cfg.coverage_tolerance, warehouse.market_currency)
    summary = outcome.summary
    if summary is not None:
        context.log.info("%s: %d/%d columns drifted, prediction drift %.3f, MAPE on %d new listings %s",
                         outcome.batch_id, summary.drifted_columns, summary.n_columns, summary.prediction_drift_score,
                         summary.n_fresh, f"{summary.mape:.1%}" if summary.mape is not None else "not judged")
    day = batch_market_days(wh).get(outcome.batch_id)
    return dg.MaterializeResult(metadata=monitoring_metadata(outcome, reports, day.isoformat() if day else "unknown",
                                                            warehouse.market_currency))
