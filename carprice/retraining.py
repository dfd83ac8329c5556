"""When a model is retrained: the regular cadence, a batch's monitoring asking for it, or no model yet.

``training_due`` is the pure rule the retraining sensor applies to what Dagster already knows (the batches
monitored since the last training); the requests themselves, with their reasons, live in the warehouse
table ``retraining_requests`` until a trained challenger answers them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from carprice.warehouse import Warehouse

# Run tags of training runs started by the retraining sensor: what kind of trigger, and why.
TRIGGER_KIND_TAG = "carprice/trigger"
TRIGGER_REASON_TAG = "carprice/trigger_reason"
NO_CHAMPION = "no_champion"
CADENCE = "cadence"


@dataclass(frozen=True)
class MonitoredBatch:
    """One batch's monitoring outcome, as its materialization recorded it."""

    batch_id: str
    retrain_requested: bool
    reasons: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()


@dataclass(frozen=True)
class TrainingRequest:
    """Train now: the kind of trigger, the reason to record, and a key naming the data it answers."""

    kind: str
    reason: str
    run_key: str


def training_due(monitored: Sequence[MonitoredBatch], every_batches: int) -> TrainingRequest | None:
    """Training is due when a batch monitored since the last training asked for it, or after ``every_batches``.

    ``monitored`` is in landing order; the newest batch names the request, so the same data never
    asks twice.
    """
    if every_batches < 1:
        raise ValueError(f"the retraining cadence must be at least 1 batch, got {every_batches}")
    if not monitored:
        return None
    key = f"train-after-{monitored[-1].batch_id}"
    asking = [m for m in monitored if m.retrain_requested]
    if asking:
        kinds = sorted({k for m in asking for k in m.kinds}) or ["monitoring"]
        reasons = list(dict.fromkeys(r for m in asking for r in m.reasons))
        return TrainingRequest("+".join(kinds), f"{asking[-1].batch_id}: " + "; ".join(reasons), key)
    if len(monitored) >= every_batches:
        return TrainingRequest(CADENCE, f"cadence: {len(monitored)} new admitted batches since the last training "
                                        f"(every {every_batches})", key)
    return None


def record_requests(wh: Warehouse, batch_id: str, model_version: str | None,
                    requests: Sequence[tuple[str, str]]) -> None:
    """Record (kind, reason) retraining requests raised by one batch's monitoring; a re-run replaces them."""
    now = datetime.now(UTC)
    with wh.transaction() as con:
        con.execute("DELETE FROM retraining_requests WHERE batch_id = ? AND served_by IS NULL", [batch_id])
        if requests:
            con.executemany("INSERT INTO retraining_requests VALUES (?, ?, ?, ?, ?, NULL, NULL)",
                            [[now, kind, reason, batch_id, model_version] for kind, reason in requests])


def serve_retraining_requests(wh: Warehouse, version: str) -> int:
    """Mark every open request as answered by the challenger ``version``; returns how many were open."""
    with wh.transaction() as con:
        n = con.execute("SELECT count(*) FROM retraining_requests WHERE served_by IS NULL").fetchone()[0]
        con.execute("UPDATE retraining_requests SET served_by = ?, served_at = ? WHERE served_by IS NULL",
                    [version, datetime.now(UTC)])
    return int(n)
