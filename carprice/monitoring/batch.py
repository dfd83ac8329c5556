"""Monitor one admitted batch against the serving model: the guard, the champion and its reference, the
Evidently reports, the stored report row, the retraining requests and the alerts to raise.

``monitor_admitted_batch`` is the whole step the ``batch_monitoring`` asset runs; it returns what happened
as a value, and leaves sending the alerts to the caller (who knows where they go).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from carprice.config import MonitoringConfig
from carprice.money.rates import BASE
from carprice.monitoring import store
from carprice.monitoring.alerts import Alert
from carprice.monitoring.drift import REFERENCE_FILE, MonitoringSummary, monitor_batch
from carprice.monitoring.retraining import NO_CHAMPION, NO_REFERENCE, record_requests
from carprice.training.modeling import ModelArtifactError, load_model
from carprice.training.registry import NoChampionError, champion
from carprice.validation.store import ADMITTED, status_of
from carprice.warehouse import Warehouse

MONITORED, SKIPPED = "monitored", "skipped"


class MonitoringError(RuntimeError):
    """A batch that cannot be monitored: not admitted, nothing clean in it, or an unusable champion."""


@dataclass
class BatchMonitoring:
    """What monitoring one batch did: ``status`` is "monitored", or "skipped" with ``note`` saying why."""

    batch_id: str
    status: str
    note: str = ""
    model_version: str | None = None
    summary: MonitoringSummary | None = None
    triggers: list[tuple[str, str]] = field(default_factory=list)  # (kind, reason) retraining requests
    alerts: list[Alert] = field(default_factory=list)


def _skip(wh: Warehouse, batch_id: str, version: str | None, kind: str, reason: str, note: str) -> BatchMonitoring:
    """Nothing to compare with: the request to train a model that has a reference is the outcome."""
    record_requests(wh, batch_id, version, [(kind, reason)])
    return BatchMonitoring(batch_id, SKIPPED, note, version, triggers=[(kind, reason)])


def monitor_admitted_batch(wh: Warehouse, batch_id: str, cfg: MonitoringConfig, reports_dir: Path,
                           currency: str = BASE) -> BatchMonitoring:
    """Compare an admitted batch with the champion's training sample and score the champion on the listings
    it never saw; record the report and any retraining requests."""
    status = status_of(wh, batch_id)
    if status not in ADMITTED:
        raise MonitoringError(f"batch {batch_id} is {status or 'not validated'}: only admitted batches are monitored")
    try:
        serving = champion(wh)
    except NoChampionError:
        return _skip(wh, batch_id, None, NO_CHAMPION,
                     "no champion model yet: the first one is trained from the admitted batches", "no champion yet")
    try:
        model = load_model(serving.artifact_path, expected_sha256=serving.sha256)
    except ModelArtifactError as exc:
        raise MonitoringError(f"cannot monitor with champion {serving.version}: {exc}") from exc
    reference_file = serving.artifact_path / REFERENCE_FILE
    if not reference_file.exists():
        # A champion saved before monitoring existed has no training sample to compare with; a new model brings one.
        return _skip(wh, batch_id, serving.version, NO_REFERENCE,
                     f"champion {serving.version} has no drift reference ({reference_file.name}): retrain to get one",
                     "champion has no reference")
    reference = pd.read_parquet(reference_file)
    current = store.batch_listings(wh, batch_id, serving.train_batches)
    if current.empty:
        raise MonitoringError(f"batch {batch_id} has no clean listings to monitor")
    reference["predicted_price"] = model.predict_price(reference)
    current["predicted_price"] = model.predict_price(current)
    folder = reports_dir / batch_id
    summary = monitor_batch(reference, current, reference_quality=serving.metrics.get("evaluation", {}), cfg=cfg,
                            html_path=folder / "drift.html", quality_html_path=folder / "quality.html",
                            title=f"{batch_id} vs champion {serving.version}", fresh=current["fresh"],
                            currency=currency)
    store.store_report(wh, {"batch_id": batch_id, "model_version": serving.version,
                            "monitored_at": datetime.now(UTC), **summary.to_row()})
    triggers = [(t.kind, t.reason) for t in summary.triggers]
    record_requests(wh, batch_id, serving.version, triggers)
    alerts = [Alert(kind, batch_id, f"retraining requested: {reason}") for kind, reason in triggers]
    return BatchMonitoring(batch_id, MONITORED, "", serving.version, summary, triggers, alerts)
