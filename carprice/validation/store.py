"""The warehouse side of validation: every check's verdict, each batch's admission status, people's
reviews, the batch profiles and the versioned reference profiles the checks compare with.

Owns ``batch_checks``, ``batch_status``, ``batch_reviews``, ``batch_profiles`` and ``reference_profiles``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime

import duckdb
import pandas as pd

from carprice.validation.profile import upgrade_profile
from carprice.warehouse import Warehouse, insert

ACCEPTED, READMITTED, QUARANTINED = "accepted", "readmitted", "quarantined"
STATUSES = (ACCEPTED, QUARANTINED, READMITTED)
# A landed batch without a status yet: never ingested, or its run ended (killed, crashed) before the verdict.
UNFINISHED = "unfinished"
READMIT = "readmit"  # the review decision that lets a quarantined batch through
# Only these reach cleaning, features and training; ADMITTED_SQL is the same list for an IN filter.
ADMITTED = (ACCEPTED, READMITTED)
ADMITTED_SQL = "(" + ", ".join(f"'{status}'" for status in ADMITTED) + ")"

DDL = [
    """CREATE TABLE IF NOT EXISTS batch_checks (
        batch_id VARCHAR NOT NULL, check_name VARCHAR NOT NULL, passed BOOLEAN NOT NULL, failures JSON,
        metrics JSON, reference_id BIGINT, checked_at TIMESTAMPTZ NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS batch_status (
        batch_id VARCHAR PRIMARY KEY, status VARCHAR NOT NULL, reason VARCHAR, decided_at TIMESTAMPTZ NOT NULL,
        decided_by VARCHAR NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS batch_reviews (
        batch_id VARCHAR NOT NULL, decision VARCHAR NOT NULL, reviewer VARCHAR NOT NULL, note VARCHAR,
        reviewed_at TIMESTAMPTZ NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS batch_profiles (
        batch_id VARCHAR PRIMARY KEY, profile JSON NOT NULL, profiled_at TIMESTAMPTZ NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS reference_profiles (
        reference_id BIGINT PRIMARY KEY, source VARCHAR NOT NULL, created_at TIMESTAMPTZ NOT NULL,
        batch_ids VARCHAR[] NOT NULL, profile JSON NOT NULL)""",
]


def latest_reference(con: duckdb.DuckDBPyConnection, source: str) -> tuple[int, dict] | None:
    """The newest reference profile of ``source``, with its version (None before the first admitted batch)."""
    row = con.execute("SELECT reference_id, profile FROM reference_profiles WHERE source = ? "
                      "ORDER BY reference_id DESC LIMIT 1", [source]).fetchone()
    return None if row is None else (int(row[0]), upgrade_profile(json.loads(row[1])))


def latest_review(con: duckdb.DuckDBPyConnection, batch_id: str) -> dict | None:
    """A person's newest decision on a batch (None if nobody reviewed it)."""
    row = con.execute("SELECT decision, reviewer, note FROM batch_reviews WHERE batch_id = ? "
                      "ORDER BY reviewed_at DESC LIMIT 1", [batch_id]).fetchone()
    return None if row is None else {"decision": row[0], "reviewer": row[1], "note": row[2]}


def record_verdict(con: duckdb.DuckDBPyConnection, batch_id: str, *, status: str, reason: str, decided_by: str,
                   checks: Sequence[dict], profile: dict, reference_id: int | None, at: datetime) -> None:
    """Store every check's outcome, the batch's status and its profile (``checks``: name, passed, failures, metrics)."""
    insert(con, "batch_checks", [{
        "batch_id": batch_id, "check_name": c["name"], "passed": c["passed"], "failures": json.dumps(c["failures"]),
        "metrics": json.dumps(c["metrics"], default=str), "reference_id": reference_id, "checked_at": at}
        for c in checks])
    insert(con, "batch_status", [{"batch_id": batch_id, "status": status, "reason": reason, "decided_at": at,
                                  "decided_by": decided_by}], replace=True)
    insert(con, "batch_profiles", [{"batch_id": batch_id, "profile": json.dumps(profile), "profiled_at": at}],
           replace=True)


def admitted_profiles(con: duckdb.DuckDBPyConnection, source: str, newest: int) -> list[dict]:
    """The stored profiles of the ``newest`` admitted batches of ``source``, newest first."""
    rows = con.execute(
        "SELECT p.profile FROM batch_profiles p JOIN batch_status s USING (batch_id) JOIN batches b USING (batch_id) "
        f"WHERE s.status IN {ADMITTED_SQL} AND b.source = ? "
        "ORDER BY b.started_at DESC, b.batch_id DESC LIMIT ?", [source, newest]).fetchall()
    return [upgrade_profile(json.loads(r[0])) for r in rows]


def add_reference(con: duckdb.DuckDBPyConnection, source: str, reference: dict, at: datetime) -> int:
    """Store a new version of ``source``'s reference profile; returns its id."""
    next_id = int(con.execute("SELECT coalesce(max(reference_id), 0) + 1 FROM reference_profiles").fetchone()[0])
    insert(con, "reference_profiles", [{"reference_id": next_id, "source": source, "created_at": at,
                                        "batch_ids": reference["batch_ids"], "profile": json.dumps(reference)}])
    return next_id


def add_review(wh: Warehouse, batch_id: str, decision: str, reviewer: str, note: str, at: datetime) -> None:
    """Record a person's decision on a batch."""
    with wh.transaction() as con:
        insert(con, "batch_reviews", [{"batch_id": batch_id, "decision": decision, "reviewer": reviewer,
                                       "note": note, "reviewed_at": at}])


def status_of(wh: Warehouse, batch_id: str) -> str | None:
    """A batch's admission status, or None if it was never validated."""
    rows = wh.query("SELECT status FROM batch_status WHERE batch_id = ?", [batch_id])
    return None if rows.empty else str(rows.iloc[0]["status"])


def failed_checks(wh: Warehouse, batch_id: str) -> dict[str, list[str]]:
    """The checks a batch failed at its newest validation, each with its failures."""
    rows = wh.query("SELECT check_name, failures FROM batch_checks WHERE batch_id = ? AND NOT passed "
                    "AND checked_at = (SELECT max(checked_at) FROM batch_checks WHERE batch_id = ?)",
                    [batch_id, batch_id])
    return {r.check_name: json.loads(r.failures) for r in rows.itertuples()}


def batch_statuses(wh: Warehouse, status: str | None = None) -> pd.DataFrame:
    """Validated batches with status and reason (optionally one status only), newest first."""
    where = "WHERE s.status = ?" if status else ""
    return wh.query(f"""SELECT s.batch_id, b.source, s.status, s.reason, s.decided_at, s.decided_by,
                               b.listings, b.rejects
                        FROM batch_status s LEFT JOIN batches b USING (batch_id) {where}
                        ORDER BY s.decided_at DESC""", [status] if status else [])


def decided_batch_ids(wh: Warehouse) -> set[str]:
    """Every batch that has a status (a batch is done only then)."""
    return set(wh.query("SELECT batch_id FROM batch_status")["batch_id"]) if wh.path.exists() else set()


def admitted_batch_ids(wh: Warehouse) -> list[str]:
    """Every admitted batch, in id order (the data version a model records)."""
    return wh.query(f"SELECT batch_id FROM batch_status WHERE status IN {ADMITTED_SQL} "
                    "ORDER BY batch_id")["batch_id"].tolist()
