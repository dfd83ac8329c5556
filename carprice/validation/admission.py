"""Admission of landed batches: run the checks, record the verdict, quarantine or admit, re-admit.

Only admitted batches (accepted, or re-admitted after a person looked) reach clean listings and
training; a quarantined batch keeps its raw rows and every failed check's numbers. The reference
the checks compare with is learned from the source's newest admitted batches and versioned in the warehouse.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

import pandas as pd

from carprice.config import ValidationConfig
from carprice.landing import Batch
from carprice.validation.checks import Outcome, run_checks
from carprice.validation.profile import landed_columns, merge_profiles, profile_rows
from carprice.warehouse import Warehouse

ADMITTED = ("accepted", "readmitted")

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


def _latest_reference(con, source: str) -> tuple[int, dict] | None:
    row = con.execute("SELECT reference_id, profile FROM reference_profiles WHERE source = ? "
                      "ORDER BY reference_id DESC LIMIT 1", [source]).fetchone()
    return None if row is None else (int(row[0]), json.loads(row[1]))


def _latest_review(con, batch_id: str) -> dict | None:
    row = con.execute("SELECT decision, reviewer, note FROM batch_reviews WHERE batch_id = ? "
                      "ORDER BY reviewed_at DESC LIMIT 1", [batch_id]).fetchone()
    return None if row is None else {"decision": row[0], "reviewer": row[1], "note": row[2]}


def validate_batch(wh: Warehouse, batch: Batch, cfg: ValidationConfig) -> Verdict:
    """Check an ingested batch against the contract and the reference, and record the verdict."""
    with wh.connect() as con:
        ref = _latest_reference(con, batch.source)
        review = _latest_review(con, batch.batch_id)
        path = batch.listings_file
        columns = landed_columns(con, str(path)) if path.exists() and path.stat().st_size else {}
        profile = profile_rows(con, [batch.batch_id])
    outcomes = run_checks(columns, profile, ref[1] if ref else None, cfg)
    if all(o.passed for o in outcomes):
        status, reason, by = "accepted", "all checks passed", "validation"
    elif review and review["decision"] == "readmit":
        status, reason, by = "readmitted", review["note"], review["reviewer"]
    else:
        status, by = "quarantined", "validation"
        reason = " | ".join(f"{o.name}: {o.summary}" for o in outcomes if not o.passed)
    now = datetime.now(UTC)
    with wh.transaction() as con:
        con.executemany("INSERT INTO batch_checks VALUES (?, ?, ?, ?, ?, ?, ?)", [
            [batch.batch_id, o.name, o.passed, json.dumps(o.failures), json.dumps(o.metrics, default=str),
             ref[0] if ref else None, now] for o in outcomes])
        con.execute("INSERT OR REPLACE INTO batch_status VALUES (?, ?, ?, ?, ?)",
                    [batch.batch_id, status, reason, now, by])
        con.execute("INSERT OR REPLACE INTO batch_profiles VALUES (?, ?, ?)",
                    [batch.batch_id, json.dumps(profile), now])
        if status in ADMITTED:
            _refresh_reference(con, batch.source, cfg, now)
    return Verdict(batch.batch_id, status, outcomes, ref[0] if ref else None, profile, review)


def _refresh_reference(con, source: str, cfg: ValidationConfig, now: datetime) -> int | None:
    """A new reference version of ``source`` merged from its newest admitted batches (None if all are empty)."""
    rows = con.execute(
        "SELECT p.profile FROM batch_profiles p JOIN batch_status s USING (batch_id) JOIN batches b USING (batch_id) "
        "WHERE s.status IN ('accepted', 'readmitted') AND b.source = ? "
        "ORDER BY b.started_at DESC, b.batch_id DESC LIMIT ?", [source, cfg.reference_batches]).fetchall()
    profiles = [p for p in (json.loads(r[0]) for r in rows) if p["n"] > 0]
    if not profiles:
        return None
    reference = merge_profiles(profiles)
    next_id = con.execute("SELECT coalesce(max(reference_id), 0) + 1 FROM reference_profiles").fetchone()[0]
    con.execute("INSERT INTO reference_profiles VALUES (?, ?, ?, ?, ?)",
                [next_id, source, now, reference["batch_ids"], json.dumps(reference)])
    return int(next_id)


def readmit(wh: Warehouse, batch_id: str, reviewer: str, note: str) -> None:
    """Record that a person reviewed a quarantined batch and lets it through; validation then admits it."""
    if not reviewer.strip():
        raise AdmissionError("a re-admission needs the reviewer's name")
    if not note.strip():
        raise AdmissionError("a re-admission needs a note saying why the batch is fine")
    status = wh.query("SELECT status FROM batch_status WHERE batch_id = ?", [batch_id])
    if status.empty:
        raise AdmissionError(f"no validated batch {batch_id!r} in the warehouse")
    if status.iloc[0]["status"] != "quarantined":
        raise AdmissionError(f"batch {batch_id!r} is {status.iloc[0]['status']}, not quarantined")
    with wh.transaction() as con:
        con.execute("INSERT INTO batch_reviews VALUES (?, 'readmit', ?, ?, ?)",
                    [batch_id, reviewer.strip(), note.strip(), datetime.now(UTC)])


def batch_statuses(wh: Warehouse, status: str | None = None) -> pd.DataFrame:
    """Validated batches with status and reason (optionally one status only), newest first."""
    where = "WHERE s.status = ?" if status else ""
    return wh.query(f"""SELECT s.batch_id, b.source, s.status, s.reason, s.decided_at, s.decided_by,
                               b.listings, b.rejects
                        FROM batch_status s LEFT JOIN batches b USING (batch_id) {where}
                        ORDER BY s.decided_at DESC""", [status] if status else [])


def admitted_batch_ids(wh: Warehouse) -> list[str]:
    return wh.query("SELECT batch_id FROM batch_status WHERE status IN ('accepted', 'readmitted') "
                    "ORDER BY batch_id")["batch_id"].tolist()
