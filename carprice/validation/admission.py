"""Admission of landed batches: run the checks, record the verdict, quarantine or admit, re-admit.

Only admitted batches (accepted, or re-admitted after a person looked) reach clean listings and
training; a quarantined batch keeps its raw rows and every failed check's numbers. The reference
the checks compare with is learned from the source's newest admitted batches and versioned in the warehouse.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from carprice.config import ValidationConfig
from carprice.ingest.landing import Batch, batch_file_bytes
from carprice.money.rates import BASE, Money
from carprice.monitoring.alerts import Alert
from carprice.validation import store
from carprice.validation.checks import ALL_CHECKS, Outcome, run_checks
from carprice.validation.profile import landed_columns, merge_profiles, profile_rows
from carprice.validation.shipped import shipped_reference
from carprice.validation.store import ACCEPTED, ADMITTED, QUARANTINED, READMIT, READMITTED
from carprice.warehouse import Warehouse

__all__ = ["ADMITTED", "AdmissionError", "Verdict", "one_line_reason", "quarantine_alerts", "readmit",
           "validate_batch"]

# A reason shown on one line of the UI (a partition's status, a check's description) is cut to about this long.
ONE_LINE = 200


class AdmissionError(ValueError):
    """A re-admission that cannot be done (unknown batch, not quarantined, no reviewer)."""


@dataclass
class Verdict:
    """What validation decided for one batch."""

    batch_id: str
    status: str
    outcomes: list[Outcome]
    reference_id: int | None
    profile: dict
    review: dict | None = None

    @property
    def admitted(self) -> bool:
        return self.status in ADMITTED

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.passed]


def validate_batch(wh: Warehouse, batch: Batch, cfg: ValidationConfig, money: Money | None = None) -> Verdict:
    """Check an ingested batch against the contract and the reference, and record the verdict.

    Prices are judged in ``money``'s market currency (default: euros, with the shipped rates).
    """
    with wh.connect() as con:
        # The warehouse's own reference of the source, else the reviewed one the project ships for it.
        # The shipped one is in euros: an installation in another currency onboards the source like any other.
        ref = store.latest_reference(con, batch.source) or (
            shipped_reference(batch.source) if (money or Money.default()).currency == BASE else None)
        review = store.latest_review(con, batch.batch_id)
        columns = landed_columns(batch_file_bytes(batch, batch.listings_file))
        profile = profile_rows(con, [batch.batch_id], money)
    outcomes = run_checks(columns, profile, ref[1] if ref else None, cfg)
    if all(o.passed for o in outcomes):
        status, reason, by = ACCEPTED, "all checks passed", "validation"
    elif review and review["decision"] == READMIT:
        status, reason, by = READMITTED, review["note"], review["reviewer"]
    else:
        status, by = QUARANTINED, "validation"
        reason = " | ".join(f"{o.name}: {o.summary}" for o in outcomes if not o.passed)
    now = datetime.now(UTC)
    with wh.transaction() as con:
        store.record_verdict(con, batch.batch_id, status=status, reason=reason, decided_by=by, profile=profile,
                             checks=[{"name": o.name, "passed": o.passed, "failures": o.failures,
                                      "metrics": o.metrics} for o in outcomes],
                             reference_id=ref[0] if ref else None, at=now)
        if status in ADMITTED:
            _refresh_reference(con, batch.source, cfg, now)
    return Verdict(batch.batch_id, status, outcomes, ref[0] if ref else None, profile, review)


def _refresh_reference(con, source: str, cfg: ValidationConfig, now: datetime) -> int | None:
    """A new reference version of ``source`` merged from its newest admitted batches (None if all are empty)."""
    profiles = [p for p in store.admitted_profiles(con, source, cfg.reference_batches) if p["n"] > 0]
    if not profiles:
        return None
    return store.add_reference(con, source, merge_profiles(profiles), now)


def readmit(wh: Warehouse, batch_id: str, reviewer: str, note: str) -> None:
    """Record that a person reviewed a quarantined batch and lets it through; validation then admits it."""
    if not reviewer.strip():
        raise AdmissionError("a re-admission needs the reviewer's name")
    if not note.strip():
        raise AdmissionError("a re-admission needs a note saying why the batch is fine")
    status = store.status_of(wh, batch_id)
    if status is None:
        raise AdmissionError(f"no validated batch {batch_id!r} in the warehouse")
    if status != QUARANTINED:
        raise AdmissionError(f"batch {batch_id!r} is {status}, not quarantined")
    store.add_review(wh, batch_id, READMIT, reviewer.strip(), note.strip(), datetime.now(UTC))


def one_line_reason(failed: dict[str, list[str]], width: int = ONE_LINE) -> str:
    """Why a batch was quarantined, on one line of at most ``width`` characters: each failed check with its first
    failure (``failed``: check name -> failures). Every failed check keeps its name; when the line is too long,
    their failures share what is left and each is cut."""
    order = sorted(failed, key=lambda name: ALL_CHECKS.index(name) if name in ALL_CHECKS else len(ALL_CHECKS))
    parts = [(f"{name}: {failed[name][0] if failed[name] else 'failed'}"
              + (f" (+{len(failed[name]) - 1} more)" if len(failed[name]) > 1 else "")).replace("\n", " ")
             for name in order]
    line = "; ".join(parts) or "no check failed"
    if len(line) <= width:
        return line
    room = (width - 2 * (len(parts) - 1)) // len(parts)
    return "; ".join(part if len(part) <= room else part[:max(room - 1, len(name) + 1)].rstrip() + "…"
                     for part, name in zip(parts, order))


def quarantine_alerts(verdict: Verdict) -> list[Alert]:
    """One alert per failed check, and one for the quarantined batch saying how to let it through."""
    failed = [Alert("check_failed", verdict.batch_id, f"{o.name} failed: {o.summary}",
                    details={"check": o.name, "failures": o.failures}) for o in verdict.failed]
    names = ", ".join(o.name for o in verdict.failed)
    return failed + [Alert("batch_quarantined", verdict.batch_id,
                           f"quarantined ({names}); nothing downstream uses it. After review: "
                           f"carprice batches readmit {verdict.batch_id} --by NAME --note WHY",
                           severity="error", details={"failed_checks": [o.name for o in verdict.failed]})]
