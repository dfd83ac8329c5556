"""The warehouse side of ingestion: the landed batches and their rows, exactly as scraped.

Owns ``batches``, ``raw_listings`` and ``raw_rejects``. Raw rows are never rewritten; ingesting a
batch again replaces exactly that batch's rows, in one transaction.
"""

from __future__ import annotations

import json
import math
import typing
from dataclasses import fields
from datetime import UTC, date, datetime

import pandas as pd
import pyarrow as pa

from carprice.ingest.landing import Batch, batch_file_bytes
from carprice.warehouse import Warehouse, insert
from scrapers.items import CarListing, Reject
from scrapers.normalize import INT64_MAX

_SQL_TYPES = {str: "VARCHAR", int: "BIGINT", float: "DOUBLE"}
_ARROW_TYPES = {"VARCHAR": pa.string(), "BIGINT": pa.int64(), "DOUBLE": pa.float64()}


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
# Listing columns added after warehouses and batch files existed without them: an existing raw_listings table gets
# them on connect, and a batch file landed by an earlier spider may lack them (they read as null).
ADDED_COLUMNS = ("properties",)
# Columns earlier spiders wrote that the item no longer has: price_eur, a price converted at scrape time (prices are
# now converted by the platform, carprice.money). A batch file landed with it is read without it; a warehouse
# created then keeps the column in raw_listings, unfilled for new batches.
RETIRED_COLUMNS = ("price_eur",)

DDL = [
    """CREATE TABLE IF NOT EXISTS batches (
        batch_id VARCHAR PRIMARY KEY, source VARCHAR NOT NULL, started_at TIMESTAMPTZ, finished_at TIMESTAMPTZ,
        finish_reason VARCHAR, spider_version VARCHAR, listings BIGINT, rejects BIGINT, pages BIGINT,
        manifest JSON, ingested_at TIMESTAMPTZ NOT NULL)""",
    "CREATE TABLE IF NOT EXISTS raw_listings ("
    + ", ".join(f"{name} {sql}{' NOT NULL' if name in ('batch_id', 'ingested_at') else ''}"
                for name, sql in RAW_COLUMNS.items()) + ")",
    *(f"ALTER TABLE raw_listings ADD COLUMN IF NOT EXISTS {name} {LISTING_COLUMNS[name]}" for name in ADDED_COLUMNS),
    "CREATE TABLE IF NOT EXISTS raw_rejects (batch_id VARCHAR NOT NULL, ingested_at TIMESTAMPTZ NOT NULL, "
    + ", ".join(f"{name} {sql}" for name, sql in REJECT_COLUMNS.items()) + ")",
]


INT64 = range(-INT64_MAX - 1, INT64_MAX + 1)
# How much of a raw value or line a reject's detail shows; the batch file keeps all of it.
SHOWN_CHARS = 200


class CastError(ValueError):
    """A JSON value that does not fit its column; ``reason`` is the reject reason category."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def cast_value(value: object, sql_type: str) -> object:
    """A JSON value as a value of the column type ``sql_type``; CastError when it does not fit.

    Batch files are written from typed items, so a number column holds JSON numbers: anything else (text, a list,
    true) was put there by hand or by a broken writer, and is refused rather than guessed at.
    """
    if value is None:
        return None
    if sql_type == "VARCHAR":
        # As read_json read a VARCHAR column: text as it is, any other value as its JSON text.
        return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise CastError("unreadable value")
    if isinstance(value, float) and not math.isfinite(value):  # 1e400 parses as infinity
        raise CastError("value out of range")
    if sql_type == "DOUBLE":
        try:
            return float(value)
        except OverflowError as exc:  # a whole number beyond any double
            raise CastError("value out of range") from exc
    if isinstance(value, float):
        if not value.is_integer():
            raise CastError("unreadable value")
        value = int(value)
    if value not in INT64:
        raise CastError("value out of range")
    return value


def _shown(text: str) -> str:
    """``text`` cut to SHOWN_CHARS, saying how long it was."""
    return text if len(text) <= SHOWN_CHARS else f"{text[:SHOWN_CHARS]}... ({len(text)} chars)"


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _unreadable_line(where: str, why: str, line: bytes) -> dict:
    return {"url": None, "scraped_at": None, "reason": "unreadable line",
            "detail": f"{where}: {_shown(why)}: {_shown(line.decode('utf-8', 'replace'))!r}"}


def parse_rows(data: bytes, columns: dict[str, str], file_name: str) -> tuple[list[dict], list[dict]]:
    """The rows of a JSON-lines file cast to ``columns``, and a reject for each line or value that does not fit.

    Python parses each line on its own, so a line that is not a JSON object is one reject, never the end of the
    file (DuckDB's read_json stops at the first). Keys outside ``columns`` are ignored; missing ones are null.
    """
    rows, rejects = [], []
    for number, line in enumerate(data.split(b"\n"), start=1):
        if not line.strip():
            continue
        where = f"{file_name} line {number}"
        try:
            record = json.loads(line, parse_constant=_no_constant)
        except RecursionError:
            rejects.append(_unreadable_line(where, "nested too deeply", line))
            continue
        except ValueError as exc:  # not JSON, not UTF-8 (UnicodeDecodeError), or a number of over 4300 digits
            rejects.append(_unreadable_line(where, str(exc), line))
            continue
        if not isinstance(record, dict):
            rejects.append(_unreadable_line(where, "not a JSON object", line))
            continue
        row = {}
        for name, sql_type in columns.items():
            try:
                row[name] = cast_value(record.get(name), sql_type)
            except CastError as exc:
                rejects.append({"url": cast_value(record.get("url"), "VARCHAR"),
                                "scraped_at": cast_value(record.get("scraped_at"), "VARCHAR"), "reason": exc.reason,
                                "detail": f"{name}: {_shown(json.dumps(record[name], ensure_ascii=False))} ({where})"})
                break
        else:
            rows.append(row)
    return rows, rejects


def _insert_rows(con, table: str, rows: list[dict], columns: dict[str, str], batch_id: str, now: datetime) -> None:
    """Insert ``rows`` of one batch into ``table``, typed exactly as ``columns`` (pandas would make ints floats)."""
    schema = pa.schema([(name, _ARROW_TYPES[sql]) for name, sql in columns.items()])
    con.register("incoming", pa.Table.from_pylist(rows, schema=schema))
    try:
        con.execute(f"INSERT INTO {table} BY NAME SELECT ? AS batch_id, ? AS ingested_at, * FROM incoming",
                    [batch_id, now])
    finally:
        con.unregister("incoming")


def ingest_batch(wh: Warehouse, batch: Batch) -> dict[str, int]:
    """Copy a landed batch into raw_listings/raw_rejects, replacing exactly that batch's rows.

    A line or value that does not fit its column becomes a row of raw_rejects with the reason; it never fails
    the batch. BatchError if a file of the batch lies outside its folder.
    """
    now = datetime.now(UTC)
    m = batch.manifest
    counts = m.get("counts", {})
    # Python reads the files, after checking where they are, and DuckDB gets rows: DuckDB is never handed a path,
    # so no manifest, symlink or SQL can make it read a file elsewhere. Turning its external access off instead
    # would hold for the whole database instance, which every connection to the warehouse file in this process
    # shares, and could not be turned on again.
    listings, listing_rejects = parse_rows(batch_file_bytes(batch, batch.listings_file), LISTING_COLUMNS,
                                           batch.listings_file.name)
    rejects, reject_rejects = parse_rows(batch_file_bytes(batch, batch.rejects_file), REJECT_COLUMNS,
                                         batch.rejects_file.name)
    made_here = [{"source": batch.source, **r} for r in listing_rejects + reject_rejects]
    with wh.transaction() as con:
        for table in ("raw_listings", "raw_rejects"):
            con.execute(f"DELETE FROM {table} WHERE batch_id = ?", [batch.batch_id])
        _insert_rows(con, "raw_listings", listings, LISTING_COLUMNS, batch.batch_id, now)
        _insert_rows(con, "raw_rejects", rejects + made_here, REJECT_COLUMNS, batch.batch_id, now)
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


def batch_market_days(wh: Warehouse) -> dict[str, date]:
    """The market day each ingested batch shows: the date of its newest listing (a site lists cars up to the day it
    is crawled; the batch id carries the crawl's clock time instead), else the day its crawl started."""
    rows = wh.query("""SELECT b.batch_id,
                              coalesce(max(try_cast(substr(r.listed_at, 1, 10) AS DATE)),
                                       CAST(b.started_at AS DATE), CAST(b.ingested_at AS DATE)) AS day
                       FROM batches b LEFT JOIN raw_listings r USING (batch_id)
                       GROUP BY b.batch_id, b.started_at, b.ingested_at""")
    return {r.batch_id: pd.Timestamp(r.day).date() for r in rows.itertuples() if not pd.isna(r.day)}
