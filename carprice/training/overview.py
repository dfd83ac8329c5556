"""The current model at a glance, from the registry: the champion, its scores in money and percent, its interval's
coverage against the target, when and why it was promoted, and every challenger since with its judgement.

Pure reads of the warehouse and pure functions of their rows; nothing here imports Dagster.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

import pandas as pd

from carprice.training import store
from carprice.training.modeling import INTERVAL_COVERAGE
from carprice.warehouse import Warehouse


@dataclass
class ModelOverview:
    """What the current-model view shows: ``champion`` is None before the first promotion."""

    champion: dict | None
    history: list[dict] = field(default_factory=list)   # every model, newest first, with its judgement
    recent_monitoring: list[dict] = field(default_factory=list)  # the champion's newest batches, newest first
    coverage_target: float = INTERVAL_COVERAGE


def coverage_flag(coverage: float | None, target: float, tolerance: float) -> str:
    """A warning when the interval covers far fewer prices than it promises ("" when it is close enough or unknown)."""
    if coverage is None or not math.isfinite(coverage) or coverage >= target - tolerance:
        return ""
    return (f"interval too narrow: covers {coverage:.0%} of prices, target {target:.0%} "
            f"(flagged below {target - tolerance:.0%})")


def _number(value) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def model_overview(wh: Warehouse, recent: int = 5) -> ModelOverview:
    """The champion (or None), every model's judgement newest first, and the champion's most recent monitoring."""
    history = [_history_row(r) for r in store.model_history(wh).to_dict("records")]
    current = next((h for h in history if h["status"] == "champion"), None)
    if current is None:
        return ModelOverview(None, history)
    row = store.model_row(wh, current["version"])
    metrics = json.loads(row["metrics"]) if isinstance(row["metrics"], str) else {}
    evaluation = {k: _number(v) for k, v in metrics.get("evaluation", {}).items()}
    promoted = store.latest_event(wh, current["version"], "champion")
    champion = {**current, "evaluation": evaluation, "evaluated_from": metrics.get("evaluated_from"),
                "code_version": row["code_version"], "sha256": row["sha256"], "artifact": row["artifact_path"],
                "promoted_at": promoted["changed_at"] if promoted else None,
                "promoted_because": promoted["reason"] if promoted else current["status_reason"]}
    monitoring = store.model_monitoring(wh, current["version"], recent).to_dict("records")
    return ModelOverview(champion, history, [{k: (None if _missing(v) else v) for k, v in m.items()}
                                             for m in monitoring])


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _history_row(row: dict) -> dict:
    out = {k: (None if _missing(v) else v) for k, v in row.items()}
    if out.get("promoted") is None:
        out["decision"] = "awaiting judgement" if out["status"] == "challenger" else out["status"]
    else:
        out["decision"] = "promoted" if out["promoted"] else "rejected"
    out["reason"] = out.get("reason") or out.get("status_reason") or ""
    for key in ("trained_at", "evaluated_at"):
        if out.get(key) is not None:
            out[key] = pd.Timestamp(out[key])
    return out
