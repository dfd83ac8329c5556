"""The warehouse side of training: features, the model registry, its history and every judgement.

Owns ``model_registry`` (one row per version with what it was built from), ``model_events`` (every
change of status, with its reason) and ``model_evaluations`` (each challenger against the champion),
and reads and writes the ``listing_features`` table.
"""

from __future__ import annotations

import json
from datetime import datetime

import duckdb
import pandas as pd

from carprice.warehouse import Warehouse, insert

DDL = [
    """CREATE TABLE IF NOT EXISTS model_registry (
        version VARCHAR PRIMARY KEY, trained_at TIMESTAMPTZ NOT NULL, status VARCHAR NOT NULL,
        status_reason VARCHAR, artifact_path VARCHAR NOT NULL, sha256 VARCHAR NOT NULL,
        train_batches VARCHAR[] NOT NULL, code_version VARCHAR NOT NULL, params JSON, features JSON,
        metrics JSON, n_train BIGINT, n_holdout BIGINT, train_cutoff TIMESTAMP, trained_because VARCHAR,
        split JSON)""",
    # Warehouses created before models recorded why they were trained.
    "ALTER TABLE model_registry ADD COLUMN IF NOT EXISTS trained_because VARCHAR",
    # Warehouses created before models recorded how they were split (those split by listing date at the cutoff);
    # a model split at random has no cutoff.
    "ALTER TABLE model_registry ADD COLUMN IF NOT EXISTS split JSON",
    "ALTER TABLE model_registry ALTER COLUMN train_cutoff DROP NOT NULL",
    """CREATE TABLE IF NOT EXISTS model_events (
        version VARCHAR NOT NULL, changed_at TIMESTAMPTZ NOT NULL, status VARCHAR NOT NULL, reason VARCHAR NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS model_evaluations (
        challenger VARCHAR NOT NULL, champion VARCHAR, evaluated_at TIMESTAMPTZ NOT NULL,
        eval_from TIMESTAMP, n_eval BIGINT NOT NULL, scores JSON NOT NULL, backtest JSON,
        promoted BOOLEAN NOT NULL, reason VARCHAR NOT NULL)""",
    # Evaluation rows that are not "listed on or after" a date (a model split without listing dates) have none.
    "ALTER TABLE model_evaluations ALTER COLUMN eval_from DROP NOT NULL",
]


def read_clean_listings(wh: Warehouse) -> pd.DataFrame:
    """Every clean listing (what features are built from)."""
    return wh.query("SELECT * FROM clean_listings")


def write_features(wh: Warehouse, features: pd.DataFrame) -> int:
    return wh.replace_table("listing_features", features)


def features_version(wh: Warehouse) -> str:
    """A fingerprint of the ``listing_features`` rows: the same rows give the same string, in any order."""
    row = wh.query("SELECT count(*) AS n, coalesce(bit_xor(hash(f)), 0) AS h FROM listing_features f").iloc[0]
    return f"{int(row['n'])}-{int(row['h']):016x}"


def read_features(wh: Warehouse) -> pd.DataFrame:
    """The features of every car once (reposts under other URLs left out), in a fixed order: the same admitted
    data trains and judges the same model, whatever order the crawls landed it in."""
    features = wh.query("SELECT f.* FROM listing_features f JOIN clean_listings c USING (url) "
                        "WHERE c.repost_of IS NULL ORDER BY f.listed_at, f.url")
    features["listed_at"] = pd.to_datetime(features["listed_at"])
    return features


def add_model(wh: Warehouse, row: dict, at: datetime, reason: str,
              supersede: tuple[str, str] | None = None) -> list[str]:
    """Register a new version (``row``: the registry columns) and its first event, in one transaction.

    ``supersede`` (status, new status): versions still in that status move to the new one first, with a reason
    naming the new version; returns them.
    """
    with wh.transaction() as con:
        superseded = []
        if supersede:
            old, new = supersede
            superseded = [r[0] for r in con.execute("SELECT version FROM model_registry WHERE status = ? "
                                                    "ORDER BY version", [old]).fetchall()]
            for version in superseded:
                set_status(con, version, new, f"never judged (its training run ended before the judgement); "
                                              f"superseded by {row['version']}", at)
        insert(con, "model_registry", [row])
        insert(con, "model_events", [{"version": row["version"], "changed_at": at, "status": row["status"],
                                      "reason": reason}])
    return superseded


def set_status(con: duckdb.DuckDBPyConnection, version: str, status: str, reason: str, at: datetime) -> None:
    """Change a version's status and append the event (inside the caller's transaction)."""
    con.execute("UPDATE model_registry SET status = ?, status_reason = ? WHERE version = ?", [status, reason, version])
    insert(con, "model_events", [{"version": version, "changed_at": at, "status": status, "reason": reason}])


def status_in(con: duckdb.DuckDBPyConnection, version: str) -> str | None:
    row = con.execute("SELECT status FROM model_registry WHERE version = ?", [version]).fetchone()
    return None if row is None else row[0]


def version_with_status(con: duckdb.DuckDBPyConnection, status: str) -> str | None:
    row = con.execute("SELECT version FROM model_registry WHERE status = ?", [status]).fetchone()
    return None if row is None else row[0]


def model_row(wh: Warehouse, version: str) -> pd.Series | None:
    rows = wh.query("SELECT * FROM model_registry WHERE version = ?", [version])
    return None if rows.empty else rows.iloc[0]


def newest_row_with_status(wh: Warehouse, status: str) -> pd.Series | None:
    rows = wh.query("SELECT * FROM model_registry WHERE status = ? ORDER BY trained_at DESC LIMIT 1", [status])
    return None if rows.empty else rows.iloc[0]


def models(wh: Warehouse) -> pd.DataFrame:
    """Every version with status, reason, data and code version, how it was split and main metrics, newest first."""
    return wh.query("""SELECT version, status, status_reason, trained_at, trained_because, code_version,
                              len(train_batches) AS batches, n_train, n_holdout, train_cutoff, split,
                              round(coalesce(metrics->>'$.evaluation.mae',
                                             metrics->>'$.evaluation.mae_eur')::DOUBLE) AS evaluation_mae
                       FROM model_registry ORDER BY trained_at DESC""")


def record_evaluation(wh: Warehouse, row: dict, challenger_metrics: dict | None) -> None:
    """Store a judgement (``row``: the model_evaluations columns) and, when the challenger was scored,
    merge its scores into its registry metrics, in one transaction."""
    with wh.transaction() as con:
        if challenger_metrics:
            con.execute("UPDATE model_registry SET metrics = json_merge_patch(metrics, ?) WHERE version = ?",
                        [json.dumps(challenger_metrics), row["challenger"]])
        insert(con, "model_evaluations", [row])


def model_history(wh: Warehouse) -> pd.DataFrame:
    """Every version newest first with why it was trained and its judgement: promoted or not, why, and the scores
    (challenger and the champion it was judged against) on the same evaluation rows."""
    return wh.query("""
        SELECT r.version, r.trained_at, r.status, r.status_reason, r.trained_because, r.n_train,
               len(r.train_batches) AS train_batches, e.evaluated_at, e.champion AS judged_against, e.promoted,
               e.reason, e.n_eval,
               coalesce(e.scores->>'$.challenger.overall.mae',
                        e.scores->>'$.challenger.overall.mae_eur')::DOUBLE AS mae,
               (e.scores->>'$.challenger.overall.median_ape')::DOUBLE AS median_ape,
               (e.scores->>'$.challenger.overall.interval_coverage')::DOUBLE AS interval_coverage,
               coalesce(e.scores->>'$.champion.overall.mae',
                        e.scores->>'$.champion.overall.mae_eur')::DOUBLE AS champion_mae,
               (e.scores->>'$.champion.overall.median_ape')::DOUBLE AS champion_median_ape
        FROM model_registry r
        LEFT JOIN (SELECT * FROM model_evaluations
                   QUALIFY row_number() OVER (PARTITION BY challenger ORDER BY evaluated_at DESC) = 1) e
               ON e.challenger = r.version
        ORDER BY r.trained_at DESC""")


def latest_event(wh: Warehouse, version: str, status: str) -> dict | None:
    """The newest change of ``version`` to ``status`` (changed_at, reason), or None."""
    rows = wh.query("SELECT changed_at, reason FROM model_events WHERE version = ? AND status = ? "
                    "ORDER BY changed_at DESC LIMIT 1", [version, status])
    return None if rows.empty else rows.iloc[0].to_dict()


def model_monitoring(wh: Warehouse, version: str, limit: int) -> pd.DataFrame:
    """The newest monitoring rows of batches judged against ``version`` (empty before monitoring ran)."""
    return wh.query("SELECT batch_id, monitored_at, mae, mape, reference_mape, decay, n_fresh, drift_share "
                    "FROM monitoring_reports WHERE model_version = ? ORDER BY monitored_at DESC LIMIT ?",
                    [version, limit])
