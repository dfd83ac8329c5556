"""The warehouse side of ingestion: the landed batches and their rows, exactly as scraped.

Owns ``batches``, ``raw_listings`` and ``raw_rejects``. Raw rows are never rewritten; ingesting a
batch again replaces exactly that batch's rows, in one transaction.
"""

from __future__ import annotations

import json
import typing
from dataclasses import fields
from datetime import UTC, date, datetime

import pandas as pd

from carprice.ingest.landing import Batch
from carprice.warehouse import Warehouse, insert
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
# raw_listings: the item's columns behind the batch they came in and when it was ingested.
RAW_COLUMNS = {"batch_id": "VARCHAR", "ingested_at": "TIMESTAMPTZ", **LISTING_COLUMNS}

DDL = [
    """CREATE TABLE IF NOT EXISTS batches (
        batch_id VARCHAR PRIMARY KEY, source VARCHAR NOT NULL, started_at TIMESTAMPTZ, finished_at TIMESTAMPTZ,
        finish_reason VARCHAR, spider_version VARCHAR, listings BIGINT, rejects BIGINT, pages BIGINT,
        manifest JSON, ingested_at TIMESTAMPTZ NOT NULL)""",
    "CREATE TABLE IF NOT EXISTS raw_listings ("
    + ", ".join(f"{name} {sql}{' NOT NULL' if name in ('batch_id', 'ingested_at') else ''}"
                for name, sql in RAW_COLUMNS.items()) + ")",
    "CREATE TABLE IF NOT EXISTS raw_rejects (batch_id VARCHAR NOT NULL, ingested_at TIMESTAMPTZ NOT NULL, "
    + ", ".join(f"{name} {sql}" for name, sql in REJECT_COLUMNS.items()) + ")",
]


def ingest_batch(wh: Warehouse, batch: Batch) -> dict[str, int]:
    """Copy a landed batch into raw_listings/raw_rejects, replacing exactly that batch's rows."""
    now = datetime.now(UTC)
    m = batch.manifest
    counts = m.get("counts", {})
    with wh.transaction() as con:
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
        insert(con, "batches", [{
            "batch_id": batch.batch_id, "source": batch.source, "started_at": m.get("started_at"),
            "finished_at": m.get("finished_at"), "finish_reason": m.get("finish_reason"),
            "spider_version": m.get("spider_version"), "listings": counts.get("listings"),
            "rejects": counts.get("rejects"), "pages": counts.get("pages"), "manifest": json.dumps(m),
            "ingested_at": now}])
        n_listings = con.execute("SELECT count(*) FROM raw_listings WHERE batch_id = ?", [batch.batch_id]).fetchone()[0]
        n_rejects = con.execute("SELECT count(*) FROM raw_rejects WHERE batch_id = ?", [batch.batch_id]).fetchone()[0]
    return {"listings": n_listings, "rejects": n_rejects}


def top_reject_reasons(wh: Warehouse, batch_id: str, limit: int = 10) -> pd.DataFrame:
    """The spider's most common reasons for rejecting pages of one batch (reason, n)."""
    return wh.query("SELECT reason, count(*) AS n FROM raw_rejects WHERE batch_id = ? GROUP BY reason "
                    "ORDER BY n DESC LIMIT ?", [batch_id, limit])


def newest_listing_date(wh: Warehouse) -> date | None:
    """The newest listing date among all landed rows, whatever their batch's status (None when empty)."""
    newest = wh.query("SELECT max(listed_at) AS d FROM raw_listings").iloc[0]["d"]
    return None if pd.isna(newest) else datetime.fromisoformat(str(newest)[:10]).date()
