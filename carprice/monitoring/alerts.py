"""Alerts: what a person should know about, as a line in the run log, a row in the alerts table, and a call
to one hook function that sends it elsewhere (chat, e-mail, a pager).

The hook is named in the settings (``CARPRICE_ALERT_HOOK=package.module:function``) and receives each
:class:`Alert`. The alert is recorded before the hook is called; a hook that fails is logged and its error
recorded beside the alert, so it never loses the alert or fails the run that raised it.
"""

from __future__ import annotations

import importlib
import json
import uuid
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from carprice.monitoring import store
from carprice.warehouse import Warehouse

KINDS = ("check_failed", "batch_quarantined", "drift", "prediction_drift", "decay")


@dataclass(frozen=True)
class Alert:
    """One thing a person should know about: its kind, what it is about, and a sentence with the numbers."""

    kind: str
    subject: str
    message: str
    severity: str = "warning"
    details: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown alert kind {self.kind!r}; known: {', '.join(KINDS)}")

    def line(self) -> str:
        """The line written to the run log."""
        return f"ALERT [{self.kind}] {self.subject}: {self.message}"


AlertHook = Callable[[Alert], object]


class _Log(Protocol):
    def warning(self, msg: str, *args) -> object: ...
    def error(self, msg: str, *args) -> object: ...


def load_hook(spec: str) -> AlertHook | None:
    """The function named by ``package.module:function``, or None when ``spec`` is empty."""
    if not spec.strip():
        return None
    module, _, name = spec.strip().partition(":")
    if not module or not name:
        raise ValueError(f"an alert hook is named 'package.module:function', got {spec!r}")
    try:
        hook = getattr(importlib.import_module(module), name)
    except Exception as exc:
        raise ValueError(f"alert hook {spec!r} cannot be loaded: {type(exc).__name__}: {exc}") from exc
    if not callable(hook):
        raise ValueError(f"alert hook {spec!r} is not a function")
    return hook


def dispatch_alerts(wh: Warehouse, alerts: Iterable[Alert], *, log: _Log, hook: AlertHook | None = None,
                 run_id: str | None = None) -> int:
    """Log and record each alert, then hand it to ``hook`` and record the outcome; returns how many."""
    alerts = list(alerts)
    if not alerts:
        return 0
    ids = [uuid.uuid4().hex for _ in alerts]
    store.add_alerts(wh, [{"alert_id": alert_id, "raised_at": datetime.now(UTC), "kind": a.kind,
                           "severity": a.severity, "subject": a.subject, "message": a.message,
                           "details": json.dumps(asdict(a)["details"], default=str), "run_id": run_id}
                          for alert_id, a in zip(ids, alerts)])
    for alert in alerts:
        log.warning(alert.line())
    if hook is None:
        return len(alerts)
    outcomes = []
    for alert_id, alert in zip(ids, alerts):
        try:
            hook(alert)
            outcomes.append((alert_id, True, None))
        except Exception as exc:  # noqa: BLE001 (any notifier failure is recorded; the alert itself stays)
            error = f"{type(exc).__name__}: {exc}"
            log.error("alert hook failed for %s on %s: %s", alert.kind, alert.subject, error)
            outcomes.append((alert_id, False, error))
    store.record_deliveries(wh, outcomes)
    return len(alerts)
