"""When a model is retrained: the regular cadence, a batch's monitoring asking for it, or no model yet.

``training_due`` is the pure rule the retraining sensor applies to what Dagster already knows (the batches
monitored since the last training); the requests themselves, with their reasons, live in the warehouse
table ``retraining_requests`` until a trained challenger answers them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from carprice.config import RetrainingConfig
from carprice.monitoring import store
from carprice.warehouse import Warehouse

# Run tags of training runs started by the retraining sensor: what kind of trigger, and why.
TRIGGER_KIND_TAG = "carprice/trigger"
TRIGGER_REASON_TAG = "carprice/trigger_reason"
NO_CHAMPION = "no_champion"
NO_REFERENCE = "no_reference"
CADENCE = "cadence"
# Triggers that mean there is nothing to compare with: training is due at once, whatever the backoff.
_URGENT = {NO_CHAMPION, NO_REFERENCE}


@dataclass(frozen=True)
class MonitoredBatch:
    """One batch's monitoring outcome, as its materialization recorded it (``record`` orders them)."""

    batch_id: str
    retrain_requested: bool
    reasons: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()
    record: int = 0


@dataclass(frozen=True)
class TrainingRequest:
    """Train now: the kind of trigger, the reason to record, and a key naming the data it answers."""

    kind: str
    reason: str
    run_key: str


def training_due(monitored: Sequence[MonitoredBatch], cfg: RetrainingConfig) -> TrainingRequest | None:
    """Whether the batches monitored since the last training call for a new one, and why.

    Training is due at once when there is no model to compare with; after ``cfg.min_batches_between``
    batches when one of them found drift or decay (a challenger trained on the same data as the last one
    would not differ); and after ``cfg.every_batches`` batches in any case. ``monitored`` is in the order
    monitoring ran (a re-monitored batch counts once, at its newest record), and the request's key names
    the newest record, so the same evidence never starts two trainings.
    """
    if cfg.every_batches < 1 or cfg.min_batches_between < 1:
        raise ValueError(f"retraining needs at least 1 batch between trainings, got {cfg}")
    latest = {m.batch_id: m for m in sorted(monitored, key=lambda m: m.record)}
    batches = list(latest.values())
    if not batches:
        return None
    key = f"train-after-{batches[-1].batch_id}-{batches[-1].record}"
    asking = [m for m in batches if m.retrain_requested]
    kinds = sorted({k for m in asking for k in m.kinds}) or ["monitoring"]
    urgent = any(k in _URGENT for k in kinds)
    if asking and (urgent or len(batches) >= cfg.min_batches_between):
        reasons = list(dict.fromkeys(r for m in asking for r in m.reasons))
        return TrainingRequest("+".join(kinds), f"{asking[-1].batch_id}: " + "; ".join(reasons), key)
    if len(batches) >= cfg.every_batches:
        return TrainingRequest(CADENCE, f"cadence: {len(batches)} new admitted batches since the last training "
                                        f"(every {cfg.every_batches})", key)
    return None


def _batches(n: int) -> str:
    return f"{n} batch{'' if n == 1 else 'es'}"


def training_wait(monitored: Sequence[MonitoredBatch], cfg: RetrainingConfig) -> str:
    """Why ``training_due`` starts no training yet, and for how many more monitored batches it waits.

    A batch that asks for retraining (drift, decay) while too few batches came since the last training raises its
    alert now and is answered later: the summary and the sensor's tick say so instead of leaving the alert alone.
    """
    batches = {m.batch_id: m for m in sorted(monitored, key=lambda m: m.record)}
    asking = sorted({k for m in batches.values() if m.retrain_requested for k in m.kinds}) or (
        ["monitoring"] if any(m.retrain_requested for m in batches.values()) else [])
    since = f"{_batches(len(batches))} monitored since the last training"
    if asking:
        more = max(cfg.min_batches_between - len(batches), 1)
        return (f"{'+'.join(asking)} asked for retraining; waiting for {_batches(more)} more ({since}; a trigger "
                f"trains after {_batches(cfg.min_batches_between)}, so that there is new data to learn from)")
    more = max(cfg.every_batches - len(batches), 1)
    return f"not due: {since}, no trigger; the cadence trains after {_batches(cfg.every_batches)} ({more} more)"


def record_requests(wh: Warehouse, batch_id: str, model_version: str | None,
                    requests: Sequence[tuple[str, str]]) -> None:
    """Record (kind, reason) retraining requests raised by one batch's monitoring; a re-run replaces them."""
    store.replace_open_requests(wh, batch_id, model_version, requests, datetime.now(UTC))


def serve_retraining_requests(wh: Warehouse, version: str) -> int:
    """Mark every open request as answered by the challenger ``version``; returns how many were open."""
    return store.answer_open_requests(wh, version, datetime.now(UTC))
