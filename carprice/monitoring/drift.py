"""Monitoring of one admitted batch against the serving (champion) model, and the rule that requests retraining.

A drift report compares the batch with a sample of the champion's training rows: drift of the monitored
feature columns, of the champion's predicted prices and of asking prices. A quality report gives the
champion's error on the batch's listings it never saw (all of the batch when no subset is named).
``monitor_batch`` runs them and summarises them; ``retraining_triggers`` is the pure rule that turns a
summary into reasons to retrain. Nothing here imports Dagster, and Evidently is imported only inside the
functions that run it, because importing it takes seconds.
"""

from __future__ import annotations

import html
import json
import math
import os
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from carprice.config import MonitoringConfig
from carprice.money.rates import BASE
from carprice.monitoring.pages import quality_preamble
from carprice.monitoring.segments import segment_errors

# The model features (features.NUMERIC / features.CATEGORICAL) whose drift is judged; doors, model and
# colour are model inputs too but are not monitored.
MONITORED_NUMERIC = ["model_year", "age_years", "mileage_km", "km_per_year", "power_kw"]
MONITORED_CATEGORICAL = ["make", "fuel", "transmission", "body", "seller_type", "region", "condition"]
MONITORED = MONITORED_NUMERIC + MONITORED_CATEGORICAL
TARGET = "market_price"
PREDICTION = "predicted_price"

# Evidently's names of the distances it computes (see evidently.legacy.calculations.stattests).
NUMERIC_METHOD = "wasserstein"      # Wasserstein distance normed by the reference's standard deviation
CATEGORICAL_METHOD = "jensenshannon"  # Jensen-Shannon distance of category frequencies


@dataclass(frozen=True)
class Trigger:
    """A reason to retrain the champion, in one sentence that carries its numbers and threshold."""

    kind: str     # "drift" | "prediction_drift" | "decay"
    reason: str


@dataclass
class MonitoringSummary:
    """What one Evidently report found about one batch, flattened for the warehouse and the retraining rule."""

    n_reference: int
    n_current: int
    drifted_columns: int
    n_columns: int
    drift_share: float
    column_scores: dict[str, dict]
    prediction_drift_score: float
    prediction_drifted: bool
    target_drift_score: float
    mae: float | None
    mape: float | None
    reference_mae: float | None
    reference_mape: float | None
    decay: float | None
    n_fresh: int                              # rows quality was judged on: those new to the model, or all of current
    triggers: list[Trigger] = field(default_factory=list)
    report_path: Path | None = None
    quality_report_path: Path | None = None
    # The error on the judged rows by segment (carprice.monitoring.segments), worst first; empty when not judged.
    segment_errors: list[dict] = field(default_factory=list)

    def to_row(self) -> dict:
        """A flat JSON-able dict with one key per ``monitoring_reports`` column (nested values as JSON strings)."""
        row = {name: value for name, value in asdict(self).items()
               if name not in {"column_scores", "triggers", "segment_errors"}}
        row["column_scores"] = json.dumps(self.column_scores, sort_keys=True)
        row["segment_errors"] = json.dumps(self.segment_errors)
        row["triggers"] = json.dumps([{"kind": t.kind, "reason": t.reason} for t in self.triggers])
        row["report_path"] = None if self.report_path is None else str(self.report_path)
        row["quality_report_path"] = None if self.quality_report_path is None else str(self.quality_report_path)
        return row


def monitor_batch(reference: pd.DataFrame, current: pd.DataFrame, *, reference_quality: dict[str, float],
                  cfg: MonitoringConfig, html_path: Path | None = None, title: str = "",
                  fresh: pd.Series | None = None, quality_html_path: Path | None = None,
                  currency: str = BASE) -> MonitoringSummary:
    """Run one Evidently report on ``current`` against ``reference``, save it as HTML, and summarise it.

    Args:
        reference: The champion's drift reference (a sample of its training rows) with the monitored
            columns, ``market_price`` and ``predicted_price``; other columns are ignored.
        current: The accepted batch with the same columns, predicted by the champion.
        reference_quality: The champion's own evaluation metrics, e.g. ``{"mae": 1600.0, "mape": 0.11}``;
            missing keys mean decay is not judged.
        cfg: Thresholds for drift, prediction drift and decay.
        html_path: Where to write the self-contained HTML report (parent folders are created).
        title: Name of the report (the snapshot's name and the HTML page title).
        fresh: Which rows of ``current`` the champion never saw (a boolean mask aligned with ``current``):
            its quality is judged on those only, in a second report saved at ``quality_html_path``.
            None judges quality on every row, in the one report.
        quality_html_path: Where the second report goes when ``fresh`` is given.

    Returns:
        The summary, its retraining triggers included.

    Raises:
        ValueError: ``current`` or ``reference`` has no rows, lacks a required column, or has no
            target or prediction values.
        RuntimeError: Evidently's result lacks a metric this summary needs, or disagrees with its configuration.
    """
    if len(current) == 0:
        raise ValueError("the current batch has no rows: there is nothing to monitor")
    if len(reference) == 0:
        raise ValueError("the drift reference has no rows: the champion's training sample is missing")
    ref = _prepare(reference, "reference")
    cur = _prepare(current, "current")
    skipped = _empty_columns(ref, cur)
    judged = [c for c in MONITORED if c not in skipped]
    if fresh is not None:
        mask = pd.Series(fresh).fillna(False).astype(bool).to_numpy()
        if len(mask) != len(cur):
            raise ValueError(f"the fresh mask has {len(mask)} values for {len(cur)} current rows")
        quality_frame = cur[mask].reset_index(drop=True)
    else:
        quality_frame = cur
    n_scored = int((quality_frame[TARGET].notna() & quality_frame[PREDICTION].notna()).sum())
    judge_quality = n_scored >= cfg.min_fresh_rows

    snapshot = _run_report(ref, cur, judged, judge_quality and fresh is None, cfg, title)
    metrics = snapshot.dict()["metrics"]
    quality_snapshot = None
    if fresh is not None and judge_quality:
        quality_snapshot = _run_quality_report(quality_frame, f"{title} (listings new to the model)")

    column_scores = {}
    for column in judged:
        method = NUMERIC_METHOD if column in MONITORED_NUMERIC else CATEGORICAL_METHOD
        score = _value_drift(metrics, column, method, cfg.column_drift_threshold)
        column_scores[column] = {"method": method, "score": score, "threshold": cfg.column_drift_threshold,
                                 "drifted": score >= cfg.column_drift_threshold}
    for column, why in skipped.items():
        method = NUMERIC_METHOD if column in MONITORED_NUMERIC else CATEGORICAL_METHOD
        column_scores[column] = {"method": method, "score": None, "threshold": cfg.column_drift_threshold,
                                 "drifted": False, "skipped": why}
    drifted = sum(1 for c in judged if column_scores[c]["drifted"])
    if judged:
        count = _single(metrics, "DriftedColumnsCount")["value"]
        # Evidently counts drifted columns itself; a different count means the per-column reading is wrong.
        if round(count["count"]) != drifted:
            raise RuntimeError(f"Evidently counted {count['count']} drifted columns, the per-column scores give "
                               f"{drifted}: {column_scores}")

    prediction_score = _value_drift(metrics, PREDICTION, NUMERIC_METHOD, cfg.prediction_drift_threshold)
    target_score = _value_drift(metrics, TARGET, NUMERIC_METHOD, cfg.prediction_drift_threshold)
    mae = mape = None
    if judge_quality:
        quality_metrics = quality_snapshot.dict()["metrics"] if quality_snapshot is not None else metrics
        mae = _finite(_single(quality_metrics, "MAE")["value"]["mean"], "MAE")
        # Evidently reports MAPE in percent (while its std is a fraction); the warehouse keeps fractions.
        mape = _finite(_single(quality_metrics, "MAPE")["value"]["mean"], "MAPE") / 100.0
    # A champion registered before metrics followed the market currency named its error mae_eur.
    reference_mae = _known(reference_quality.get("mae", reference_quality.get("mae_eur")))
    reference_mape = _known(reference_quality.get("mape"))
    decay = mape / reference_mape - 1.0 if mape is not None and reference_mape else None

    summary = MonitoringSummary(
        n_reference=len(reference), n_current=len(current), drifted_columns=drifted, n_columns=len(judged),
        drift_share=drifted / len(judged) if judged else 0.0, column_scores=column_scores,
        prediction_drift_score=prediction_score,
        prediction_drifted=prediction_score >= cfg.prediction_drift_threshold,
        target_drift_score=target_score, mae=mae, mape=mape, reference_mae=reference_mae,
        reference_mape=reference_mape, decay=decay, n_fresh=len(quality_frame), triggers=[], report_path=None)
    summary.triggers = retraining_triggers(summary, cfg, currency)
    if judge_quality:
        summary.segment_errors = segment_errors(quality_frame, cfg.segment_columns, cfg.min_segment_rows,
                                                reference_mape)
    if html_path is not None:
        summary.report_path = _save_html(snapshot, Path(html_path), title)
    if quality_snapshot is not None and quality_html_path is not None:
        summary.quality_report_path = _save_html(quality_snapshot, Path(quality_html_path),
                                                 f"{title} (listings new to the model)",
                                                 preamble=quality_preamble(summary, currency))
    elif fresh is None:
        summary.quality_report_path = summary.report_path
    return summary


def retraining_triggers(summary: MonitoringSummary, cfg: MonitoringConfig, currency: str = BASE) -> list[Trigger]:
    """The reasons a summary gives to retrain: feature drift, prediction drift, and decay of the champion's error.

    Args:
        summary: A batch's monitoring summary.
        cfg: ``drift_share_threshold`` (share of drifted columns, inclusive), ``prediction_drift_threshold``
            (inclusive), ``decay_margin`` (MAPE must exceed the champion's by more than this share) and
            ``min_fresh_rows`` (smaller batches are not judged on quality).

    Returns:
        Zero or more triggers, in the order drift, prediction drift, decay.
    """
    triggers = []
    if summary.n_columns and summary.drift_share >= cfg.drift_share_threshold:
        names = ", ".join(f"{c} ({s['method']} {s['score']:.3f})" for c, s in summary.column_scores.items()
                          if s.get("drifted"))
        triggers.append(Trigger("drift", (
            f"{summary.drifted_columns} of {summary.n_columns} feature columns drifted "
            f"({summary.drift_share:.0%} ≥ {cfg.drift_share_threshold:.0%}; column threshold "
            f"{cfg.column_drift_threshold:g}): {names}")))
    if summary.prediction_drift_score >= cfg.prediction_drift_threshold:
        triggers.append(Trigger("prediction_drift", (
            f"predicted prices drifted: Wasserstein distance {summary.prediction_drift_score:.3f} reference "
            f"standard deviations ≥ {cfg.prediction_drift_threshold:g}")))
    if (summary.n_fresh >= cfg.min_fresh_rows and summary.mape is not None
            and summary.reference_mape is not None and summary.reference_mape > 0
            and summary.mape > summary.reference_mape * (1 + cfg.decay_margin)):
        above = summary.mape / summary.reference_mape - 1
        mae = ""
        if summary.mae is not None and summary.reference_mae is not None:
            mae = f"; MAE {summary.mae:,.0f} {currency} vs {summary.reference_mae:,.0f} {currency}"
        triggers.append(Trigger("decay", (
            f"champion MAPE on {summary.n_fresh} fresh listings is {summary.mape:.1%}, {above:.0%} above its "
            f"evaluation MAPE of {summary.reference_mape:.1%} (allowed margin {cfg.decay_margin:.0%}, "
            f"i.e. up to {summary.reference_mape * (1 + cfg.decay_margin):.1%}){mae}")))
    return triggers


def _prepare(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    """The monitored, target and prediction columns of ``frame`` with the dtypes Evidently expects."""
    missing = [c for c in MONITORED + [TARGET, PREDICTION] if c not in frame.columns]
    if missing:
        raise ValueError(f"the {name} frame lacks column(s) {', '.join(missing)} needed for monitoring")
    out = pd.DataFrame(index=range(len(frame)))
    for column in MONITORED_NUMERIC + [TARGET, PREDICTION]:
        # Nullable Int64/Float64 columns carry pd.NA, which Evidently's distances do not accept.
        out[column] = pd.to_numeric(frame[column], errors="raise").astype("float64").to_numpy()
    for column in MONITORED_CATEGORICAL:
        values = frame[column].astype("object")
        out[column] = values.where(values.notna(), None).to_numpy()
    for column in (TARGET, PREDICTION):
        if out[column].notna().sum() == 0:
            raise ValueError(f"the {name} frame has no {column} values: monitoring needs prices and predictions")
    return out


def _empty_columns(reference: pd.DataFrame, current: pd.DataFrame) -> dict[str, str]:
    """Monitored columns without a single value in either frame, with the reason (Evidently cannot score them)."""
    skipped = {}
    for column in MONITORED:
        if reference[column].notna().sum() == 0:
            skipped[column] = "no values in the reference"
        elif current[column].notna().sum() == 0:
            skipped[column] = "no values in the current batch"
    return skipped


def _run_report(reference: pd.DataFrame, current: pd.DataFrame, judged: list[str], judge_quality: bool,
                cfg: MonitoringConfig, title: str) -> Any:
    """Evidently's snapshot of the drift, prediction-drift, target-drift and (if judged) quality metrics."""
    from evidently import DataDefinition, Dataset, Regression, Report
    from evidently.metrics import MAE, MAPE, ValueDrift
    from evidently.presets import DataDriftPreset

    definition = DataDefinition(
        numerical_columns=MONITORED_NUMERIC + [TARGET, PREDICTION], categorical_columns=MONITORED_CATEGORICAL,
        regression=[Regression(target=TARGET, prediction=PREDICTION)])
    items: list = []
    if judged:
        # Fixed distance methods: Evidently's default picks p-value tests (KS, chi-square) when the
        # reference has at most 1,000 rows and distances above, so one shift would be judged by a
        # different rule depending on the sample size.
        items.append(DataDriftPreset(columns=judged, num_method=NUMERIC_METHOD, cat_method=CATEGORICAL_METHOD,
                                     num_threshold=cfg.column_drift_threshold,
                                     cat_threshold=cfg.column_drift_threshold,
                                     drift_share=cfg.drift_share_threshold))
    items += [ValueDrift(column=PREDICTION, method=NUMERIC_METHOD, threshold=cfg.prediction_drift_threshold),
              ValueDrift(column=TARGET, method=NUMERIC_METHOD, threshold=cfg.prediction_drift_threshold)]
    if judge_quality:
        items += [MAE(), MAPE()]
    report = Report(items)
    with warnings.catch_warnings():
        # Declaring the regression makes Evidently try R² on tiny slices; the summary does not use it.
        warnings.filterwarnings("ignore", message="R\\^2 score is not well-defined")
        return report.run(Dataset.from_pandas(current, data_definition=definition),
                          Dataset.from_pandas(reference, data_definition=definition), name=title or None)


def _run_quality_report(current: pd.DataFrame, title: str) -> Any:
    """Evidently's snapshot of the champion's MAE and MAPE on ``current`` alone (asking prices are the labels)."""
    from evidently import DataDefinition, Dataset, Regression, Report
    from evidently.metrics import MAE, MAPE

    definition = DataDefinition(numerical_columns=[TARGET, PREDICTION],
                                regression=[Regression(target=TARGET, prediction=PREDICTION)])
    data = current[[TARGET, PREDICTION]].dropna().reset_index(drop=True)
    return Report([MAE(), MAPE()]).run(Dataset.from_pandas(data, data_definition=definition), None,
                                       name=title or None)


def _single(metrics: list[dict], metric_type: str, column: str | None = None) -> dict:
    """The one metric of Evidently's ``snapshot.dict()`` with this type (and column), or a loud error."""
    found = [m for m in metrics
             if m.get("config", {}).get("type", "").rsplit(":", 1)[-1] == metric_type
             and (column is None or m["config"].get("column") == column)]
    if len(found) != 1:
        what = metric_type if column is None else f"{metric_type} of column {column!r}"
        names = [m.get("metric_name") for m in metrics]
        raise RuntimeError(f"expected one {what} in the Evidently report, found {len(found)} among {names}")
    return found[0]


def _value_drift(metrics: list[dict], column: str, method: str, threshold: float) -> float:
    """A column's drift score, after checking Evidently used the method and threshold it was asked for."""
    metric = _single(metrics, "ValueDrift", column)
    used = (metric["config"].get("method"), metric["config"].get("threshold"))
    if used[0] != method or used[1] is None or not math.isclose(used[1], threshold):
        raise RuntimeError(f"Evidently scored {column} with {used}, not ({method!r}, {threshold})")
    return _finite(metric["value"], f"drift of {column}")


def _finite(value: Any, what: str) -> float:
    """``value`` as a plain float, refusing NaN and infinities (they would pass every threshold silently)."""
    number = float(value)
    if not math.isfinite(number):
        raise RuntimeError(f"Evidently returned {number} for {what}")
    return number


def _known(value: float | None) -> float | None:
    """A reference metric as a float, or None when the registry has none (missing or NaN)."""
    if value is None or not math.isfinite(float(value)):
        return None
    return float(value)


def _save_html(snapshot: Any, path: Path, title: str, preamble: str = "") -> Path:
    """Write the snapshot as one self-contained HTML file, replacing any earlier file at ``path``; ``preamble``
    (HTML) goes above Evidently's dashboard."""
    # Snapshot.save_html silently writes nothing when given a Path, so the string is written here.
    page = snapshot.get_html_str(as_iframe=False)
    if preamble:
        page = page.replace("<body>", f"<body>\n{preamble}", 1)
    if title:
        # Evidently's page has no <title>; without one every report's browser tab reads the same.
        page = page.replace("<head>", f"<head>\n<title>{html.escape(title)}</title>", 1)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(page, encoding="utf-8")
    os.replace(partial, path)  # a re-run never leaves a half-written report behind
    return path


# --- the champion's drift reference ------------------------------------------------------------

REFERENCE_FILE = "reference.parquet"


def reference_sample(train: pd.DataFrame, rows: int, seed: int = 0) -> pd.DataFrame:
    """A seeded sample of a model's training rows, kept beside it as the reference later batches are compared with."""
    return train.sample(n=min(rows, len(train)), random_state=seed).reset_index(drop=True)
