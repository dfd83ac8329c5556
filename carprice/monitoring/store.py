"""The warehouse side of monitoring: a batch's listings as the serving model sees them, the report rows,
the retraining requests and the alerts.

Owns ``monitoring_reports`` (one row per admitted batch and serving model), ``retraining_requests``
(why models get retrained outside the regular cadence; ``served_by`` is the model trained and judged in answer)
and ``alerts`` (everything a person should know about).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import pandas as pd

from carprice.cleaning.store import LISTING_KEY_SQL
from carprice.warehouse import Warehouse, insert, rename_columns

DDL = [
    """CREATE TABLE IF NOT EXISTS monitoring_reports (
        batch_id VARCHAR NOT NULL, model_version VARCHAR NOT NULL, monitored_at TIMESTAMPTZ NOT NULL,
        n_reference BIGINT, n_current BIGINT, drifted_columns BIGINT, n_columns BIGINT, drift_share DOUBLE,
        column_scores JSON, prediction_drift_score DOUBLE, prediction_drifted BOOLEAN, target_drift_score DOUBLE,
        mae DOUBLE, mape DOUBLE, reference_mae DOUBLE, reference_mape DOUBLE, decay DOUBLE,
        triggers JSON, report_path VARCHAR, n_fresh BIGINT, quality_report_path VARCHAR, segment_errors JSON)""",
    # Warehouses created before monitoring broke the error down by segment.
    "ALTER TABLE monitoring_reports ADD COLUMN IF NOT EXISTS segment_errors JSON",
    # Warehouses created when every installation priced in euros named the errors after them.
    rename_columns("monitoring_reports", {"mae_eur": "mae", "reference_mae_eur": "reference_mae"}),
    """CREATE TABLE IF NOT EXISTS retraining_requests (
        requested_at TIMESTAMPTZ NOT NULL, kind VARCHAR NOT NULL, reason VARCHAR NOT NULL, batch_id VARCHAR,
        model_version VARCHAR, served_by VARCHAR, served_at TIMESTAMPTZ)""",
    """CREATE TABLE IF NOT EXISTS alerts (
        alert_id VARCHAR PRIMARY KEY, raised_at TIMESTAMPTZ NOT NULL, kind VARCHAR NOT NULL, severity VARCHAR NOT NULL,
        subject VARCHAR NOT NULL, message VARCHAR NOT NULL, details JSON, run_id VARCHAR, delivered BOOLEAN,
        delivery_error VARCHAR)""",
]


def batch_listings(wh: Warehouse, batch_id: str, train_batches: list[str]) -> pd.DataFrame:
    """Feature rows of the batch's clean listings, with ``fresh``: never seen in any of ``train_batches``.

    Listings are matched by identity (source and URL path), as cleaning matches them; each comes with
    its current clean row.
    """
    return wh.query(
        f"""WITH seen AS (SELECT DISTINCT {LISTING_KEY_SQL} AS listing_key FROM raw_listings
                          WHERE list_contains(?, batch_id)),
                 batch AS (SELECT DISTINCT {LISTING_KEY_SQL} AS listing_key FROM raw_listings WHERE batch_id = ?)
            SELECT f.*, NOT EXISTS (SELECT 1 FROM seen WHERE seen.listing_key = c.listing_key) AS fresh
            FROM listing_features f JOIN clean_listings c USING (url)
            WHERE EXISTS (SELECT 1 FROM batch WHERE batch.listing_key = c.listing_key)""",
        [train_batches, batch_id])


def store_report(wh: Warehouse, row: dict) -> None:
    """Record one batch's monitoring against one model; monitoring it again with that model replaces the row."""
    with wh.transaction() as con:
        con.execute("DELETE FROM monitoring_reports WHERE batch_id = ? AND model_version = ?",
                    [row["batch_id"], row["model_version"]])
        insert(con, "monitoring_reports", [row])


def replace_open_requests(wh: Warehouse, batch_id: str, model_version: str | None,
                          requests: Sequence[tuple[str, str]], at: datetime) -> None:
    """Record (kind, reason) requests raised by one batch's monitoring, replacing its unanswered ones."""
    with wh.transaction() as con:
        con.execute("DELETE FROM retraining_requests WHERE batch_id = ? AND served_by IS NULL", [batch_id])
        insert(con, "retraining_requests", [
            {"requested_at": at, "kind": kind, "reason": reason, "batch_id": batch_id, "model_version": model_version}
            for kind, reason in requests])


def answer_open_requests(wh: Warehouse, version: str, at: datetime) -> int:
    """Mark every open request as answered by ``version``; returns how many were open."""
    with wh.transaction() as con:
        n = con.execute("SELECT count(*) FROM retraining_requests WHERE served_by IS NULL").fetchone()[0]
        con.execute("UPDATE retraining_requests SET served_by = ?, served_at = ? WHERE served_by IS NULL",
                    [version, at])
    return int(n)


def add_alerts(wh: Warehouse, rows: Sequence[dict]) -> None:
    """Record alerts (``rows``: the alerts columns) in one transaction."""
    with wh.transaction() as con:
        insert(con, "alerts", rows)


def record_deliveries(wh: Warehouse, outcomes: Sequence[tuple[str, bool, str | None]]) -> None:
    """Record, per alert id, whether the hook delivered it and its error if not."""
    with wh.transaction() as con:
        con.executemany("UPDATE alerts SET delivered = ?, delivery_error = ? WHERE alert_id = ?",
                        [[delivered, error, alert_id] for alert_id, delivered, error in outcomes])


def alert_counts(wh: Warehouse) -> dict[str, int]:
    """Alerts raised so far, by kind."""
    rows = wh.query("SELECT kind, count(*) AS n FROM alerts GROUP BY kind ORDER BY kind")
    return {r.kind: int(r.n) for r in rows.itertuples()}


def request_counts(wh: Warehouse) -> dict[str, int]:
    """Retraining requests raised so far, by kind."""
    rows = wh.query("SELECT kind, count(*) AS n FROM retraining_requests GROUP BY kind ORDER BY kind")
    return {r.kind: int(r.n) for r in rows.itertuples()}


def batch_overview(wh: Warehouse) -> pd.DataFrame:
    """One row per validated batch, newest decision first: its verdict and why, and its newest monitoring (drift,
    the champion's error on listings new to it, decay, the reports), empty for batches never monitored."""
    return wh.query("""
        WITH latest AS (SELECT * FROM monitoring_reports
                        QUALIFY row_number() OVER (PARTITION BY batch_id ORDER BY monitored_at DESC) = 1)
        SELECT s.batch_id, b.source, s.status, s.reason, s.decided_at, s.decided_by, b.listings,
               m.model_version, m.drifted_columns, m.n_columns, m.drift_share, m.prediction_drift_score,
               m.mae, m.mape, m.reference_mape, m.decay, m.n_fresh, m.triggers, m.report_path,
               m.quality_report_path, m.segment_errors
        FROM batch_status s LEFT JOIN batches b USING (batch_id) LEFT JOIN latest m USING (batch_id)
        ORDER BY s.decided_at DESC""")
