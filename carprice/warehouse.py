"""The DuckDB warehouse: one file, short-lived connections, every write in one transaction.

DuckDB lets one process write at a time, so nothing here holds a connection
open between calls.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import typing
from collections.abc import Iterator
from dataclasses import fields
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pandas as pd

from carprice.landing import Batch
from scrapers.items import CarListing, Reject

_SQL_TYPES = {str: "VARCHAR", int: "BIGINT", float: "DOUBLE"}


def _columns(item_type) -> dict[str, str]:
    """DuckDB column types of an item dataclass, from its annotations (``X | None`` -> X's type)."""
    hints = typing.get_type_hints(item_type)
    out = {}
    for f in fields(item_type):
        args = [a for a in typing.get_args(hints[f.name]) if a is not type(None)] or [hints[f.name]]
        out[f.name] = _SQL_TYPES[args[0]]
    return out


LISTING_COLUMNS = _columns(CarListing)
REJECT_COLUMNS = _columns(Reject)

_SCHEMA = [
    """CREATE TABLE IF NOT EXISTS batches (
        batch_id VARCHAR PRIMARY KEY, source VARCHAR NOT NULL, started_at TIMESTAMPTZ, finished_at TIMESTAMPTZ,
        finish_reason VARCHAR, spider_version VARCHAR, listings BIGINT, rejects BIGINT, pages BIGINT,
        manifest JSON, ingested_at TIMESTAMPTZ NOT NULL)""",
    "CREATE TABLE IF NOT EXISTS raw_listings (batch_id VARCHAR NOT NULL, ingested_at TIMESTAMPTZ NOT NULL, "
    + ", ".join(f"{name} {sql}" for name, sql in LISTING_COLUMNS.items()) + ")",
    "CREATE TABLE IF NOT EXISTS raw_rejects (batch_id VARCHAR NOT NULL, ingested_at TIMESTAMPTZ NOT NULL, "
    + ", ".join(f"{name} {sql}" for name, sql in REJECT_COLUMNS.items()) + ")",
    # Models: one row per version with what it was built from; every status change in model_events.
    """CREATE TABLE IF NOT EXISTS model_registry (
        version VARCHAR PRIMARY KEY, trained_at TIMESTAMPTZ NOT NULL, status VARCHAR NOT NULL,
        status_reason VARCHAR, artifact_path VARCHAR NOT NULL, sha256 VARCHAR NOT NULL,
        train_batches VARCHAR[] NOT NULL, code_version VARCHAR NOT NULL, params JSON, features JSON,
        metrics JSON, n_train BIGINT, n_holdout BIGINT, train_cutoff TIMESTAMP NOT NULL, trained_because VARCHAR)""",
    # Warehouses created before models recorded why they were trained.
    "ALTER TABLE model_registry ADD COLUMN IF NOT EXISTS trained_because VARCHAR",
    """CREATE TABLE IF NOT EXISTS model_events (
        version VARCHAR NOT NULL, changed_at TIMESTAMPTZ NOT NULL, status VARCHAR NOT NULL, reason VARCHAR NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS model_evaluations (
        challenger VARCHAR NOT NULL, champion VARCHAR, evaluated_at TIMESTAMPTZ NOT NULL,
        eval_from TIMESTAMP NOT NULL, n_eval BIGINT NOT NULL, scores JSON NOT NULL, backtest JSON,
        promoted BOOLEAN NOT NULL, reason VARCHAR NOT NULL)""",
    # Validation: every check's verdict per batch, the batch's admission status, people's reviews,
    # and the versioned reference profiles the checks compare with.
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
    # Monitoring: one row per accepted batch and serving model (Evidently report summary and its HTML file).
    """CREATE TABLE IF NOT EXISTS monitoring_reports (
        batch_id VARCHAR NOT NULL, model_version VARCHAR NOT NULL, monitored_at TIMESTAMPTZ NOT NULL,
        n_reference BIGINT, n_current BIGINT, drifted_columns BIGINT, n_columns BIGINT, drift_share DOUBLE,
        column_scores JSON, prediction_drift_score DOUBLE, prediction_drifted BOOLEAN, target_drift_score DOUBLE,
        mae_eur DOUBLE, mape DOUBLE, reference_mae_eur DOUBLE, reference_mape DOUBLE, decay DOUBLE,
        triggers JSON, report_path VARCHAR, n_fresh BIGINT, quality_report_path VARCHAR)""",
    # Why models get retrained outside the regular cadence; served_by is the model trained in answer.
    """CREATE TABLE IF NOT EXISTS retraining_requests (
        requested_at TIMESTAMPTZ NOT NULL, kind VARCHAR NOT NULL, reason VARCHAR NOT NULL, batch_id VARCHAR,
        model_version VARCHAR, served_by VARCHAR, served_at TIMESTAMPTZ)""",
    # Everything a person should know about: failed checks, quarantined batches, monitoring triggers.
    """CREATE TABLE IF NOT EXISTS alerts (
        alert_id VARCHAR PRIMARY KEY, raised_at TIMESTAMPTZ NOT NULL, kind VARCHAR NOT NULL, severity VARCHAR NOT NULL, subject VARCHAR NOT NULL,
        message VARCHAR NOT NULL, details JSON, run_id VARCHAR, delivered BOOLEAN, delivery_error VARCHAR)""",
]


class Warehouse:
    """Reads and writes the warehouse file; each method opens and closes its own connection."""

    def __init__(self, path: Path | str):
        self.path = Path(path)

    @contextlib.contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection for one unit of work; the schema exists before any write."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        con = duckdb.connect(str(self.path), read_only=read_only)
        try:
            if not read_only:
                for ddl in _SCHEMA:
                    con.execute(ddl)
            yield con
        finally:
            con.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection inside one transaction: everything in the block lands, or nothing does."""
        with self.connect() as con:
            con.begin()
            try:
                yield con
            except BaseException:
                con.rollback()
                raise
            con.commit()

    def query(self, sql: str, params: list | None = None) -> pd.DataFrame:
        """Run a read query and return a DataFrame."""
        with self.connect() as con:
            return con.execute(sql, params or []).df()

    def ingest_batch(self, batch: Batch) -> dict[str, int]:
        """Copy a landed batch into raw_listings/raw_rejects, replacing exactly that batch's rows."""
        now = datetime.now(UTC)
        m = batch.manifest
        counts = m.get("counts", {})
        with self.transaction() as con:
            for table, path, columns in (("raw_listings", batch.listings_file, LISTING_COLUMNS),
                                         ("raw_rejects", batch.rejects_file, REJECT_COLUMNS)):
                con.execute(f"DELETE FROM {table} WHERE batch_id = ?", [batch.batch_id])
                if path.exists() and path.stat().st_size > 0:
                    spec = "{" + ", ".join(f"'{k}': '{v}'" for k, v in columns.items()) + "}"
                    con.execute(
                        f"INSERT INTO {table} BY NAME SELECT ? AS batch_id, ? AS ingested_at, * "
                        f"FROM read_json(?, format='newline_delimited', columns={spec})",
                        [batch.batch_id, now, str(path)],
                    )
            con.execute("DELETE FROM batches WHERE batch_id = ?", [batch.batch_id])
            con.execute(
                "INSERT INTO batches VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [batch.batch_id, batch.source, m.get("started_at"), m.get("finished_at"), m.get("finish_reason"),
                 m.get("spider_version"), counts.get("listings"), counts.get("rejects"), counts.get("pages"),
                 json.dumps(m), now],
            )
            n_listings = con.execute("SELECT count(*) FROM raw_listings WHERE batch_id = ?", [batch.batch_id]).fetchone()[0]
            n_rejects = con.execute("SELECT count(*) FROM raw_rejects WHERE batch_id = ?", [batch.batch_id]).fetchone()[0]
        return {"listings": n_listings, "rejects": n_rejects}

    def count(self, table: str) -> int:
        """Rows in ``table``; 0 when it does not exist yet (tables built by assets appear on first run)."""
        with self.connect() as con:
            exists = con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = ?",
                                 [table]).fetchone()[0]
            return int(con.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]) if exists else 0

    def replace_table(self, name: str, df: pd.DataFrame) -> int:
        """Replace table ``name`` with ``df`` in one transaction; returns the row count."""
        with self.transaction() as con:
            con.register("incoming", df)
            con.execute(f'CREATE OR REPLACE TABLE "{name}" AS SELECT * FROM incoming')
            con.unregister("incoming")
        return len(df)

    def publish_snapshot(self, target: Path) -> Path:
        """Copy the warehouse to ``target`` atomically, for readers who must not block the writer.

        Readers with the old snapshot open keep reading it; new readers get the new one.
        """
        with self.connect() as con:
            con.execute("CHECKPOINT")
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp")
        shutil.copyfile(self.path, tmp)
        os.replace(tmp, target)
        return target
