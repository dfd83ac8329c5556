"""Land an existing data set (CSV, Parquet or JSON lines) as a batch, so exports feed the same checks.

Columns are mapped onto the spider's raw fields (``--map price=price_raw``); common names map by
default. Every row goes through the spider's own normalization and row rules, and lands through the
same BatchWriter, so an imported batch is indistinguishable downstream from a crawled one.
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from scrapers.batch_writer import BatchWriter
from scrapers.items import CarListing, Reject
from scrapers.pipelines import listing_problem, normalize_listing, reject_detail
from scrapers.settings import EUR_PER_UNIT

RAW_FIELDS = {f.name for f in dataclasses.fields(CarListing)} - {
    "source", "scraped_at", "page_format", "source_fields", "make", "model_year", "first_registration",
    "mileage_km", "fuel", "transmission", "body", "power_kw", "doors", "condition", "price", "currency",
    "price_eur", "seller_type", "listed_at"}
DEFAULT_MAP = {
    "url": "url", "link": "url", "title": "title", "description": "description", "make": "make_raw",
    "brand": "make_raw", "manufacturer": "make_raw", "model": "model", "year": "model_year_raw",
    "model_year": "model_year_raw", "first_registration": "first_registration_raw", "mileage": "mileage_raw",
    "odometer": "mileage_raw", "mileage_unit": "mileage_unit_raw", "fuel": "fuel_raw", "fuel_type": "fuel_raw",
    "transmission": "transmission_raw", "gearbox": "transmission_raw", "body": "body_raw", "body_type": "body_raw",
    "power": "power_raw", "power_kw": "power_raw", "power_unit": "power_unit_raw", "color": "color",
    "colour": "color", "doors": "doors_raw", "condition": "condition_raw", "price": "price_raw",
    "currency": "currency_raw", "seller_type": "seller_type_raw", "seller": "seller_name", "region": "region",
    "listed_at": "listed_at_raw", "date": "listed_at_raw", "id": "site_listing_id",
}


class FileImportError(ValueError):
    """A file that cannot be imported: unknown format, unreadable, bad column map."""


def parse_column_map(pairs: list[str]) -> dict[str, str]:
    """``["price=price_raw", ...]`` -> {column: field}; FileImportError for a malformed pair or unknown field."""
    out = {}
    for pair in pairs:
        column, sep, target = pair.partition("=")
        if not sep or not column.strip() or not target.strip():
            raise FileImportError(f"column map entries look like column=field, got {pair!r}")
        if target.strip() not in RAW_FIELDS:
            raise FileImportError(f"unknown field {target.strip()!r}; fields: {', '.join(sorted(RAW_FIELDS))}")
        out[column.strip()] = target.strip()
    return out


# Readers by file extension, each giving every value as text or None.
READERS = {
    ".csv": lambda path: pd.read_csv(path, dtype=str, keep_default_na=False).replace({"": None}),
    ".parquet": lambda path: pd.read_parquet(path).astype(object).where(lambda d: d.notna(), None),
    ".jsonl": lambda path: pd.read_json(path, lines=True, dtype=False).astype(object).where(lambda d: d.notna(), None),
}
READERS.update({".pq": READERS[".parquet"], ".ndjson": READERS[".jsonl"], ".json": READERS[".jsonl"]})


def read_table(path: Path) -> pd.DataFrame:
    """Read CSV, Parquet or JSON lines (by extension) with every value as text; FileImportError if it has no rows."""
    suffix = path.suffix.lower()
    if suffix not in READERS:
        raise FileImportError(f"unknown file type {suffix!r}: use .csv, .parquet or .jsonl")
    try:
        table = READERS[suffix](path) if path.stat().st_size else None
    except pd.errors.EmptyDataError:  # a CSV of blank lines
        table = None
    except (OSError, ValueError) as exc:
        raise FileImportError(f"cannot read {path}: {exc}") from exc
    # Said plainly: a header alone would otherwise land an empty batch, and an empty file lack every column.
    if table is None or len(table.columns) == 0:
        raise FileImportError(f"{path.name} is empty")
    if len(table) == 0:
        raise FileImportError(f"{path.name} has no rows")
    return table


def import_file(path: Path, landing_dir: Path, source: str, column_map: dict[str, str] | None = None) -> Path:
    """Land ``path`` as a batch of ``source``; returns the batch folder. Rows that fail the rules are rejects."""
    table = read_table(path)
    mapping = {c: DEFAULT_MAP[c.lower()] for c in table.columns if c.lower() in DEFAULT_MAP}
    mapping.update(column_map or {})
    missing = [c for c in (column_map or {}) if c not in table.columns]
    if missing:
        raise FileImportError(f"mapped columns not in {path.name}: {missing}; columns: {list(table.columns)}")
    if "model" not in mapping.values() or "price_raw" not in mapping.values() or "make_raw" not in mapping.values():
        raise FileImportError(f"{path.name} needs columns for make, model and price (map them with --map); "
                           f"mapped: {mapping}")
    scraped_at = datetime.now(UTC).isoformat()
    writer = BatchWriter(landing_dir, source)
    for index, row in enumerate(table.to_dict("records")):
        values = {field: (None if row[col] is None else str(row[col])) for col, field in mapping.items()}
        url = values.pop("url", None) or f"file://{path.resolve()}#row={index + 1}"
        item = normalize_listing(CarListing(url=url, source=source, scraped_at=scraped_at,
                                            page_format=f"file:{path.suffix.lower().lstrip('.')}", **values),
                                 EUR_PER_UNIT)
        problem = listing_problem(item, EUR_PER_UNIT)
        if problem:
            writer.add_reject(asdict(Reject(url=url, source=source, scraped_at=scraped_at, reason=problem.reason,
                                            detail=reject_detail(problem, str(row)))))
        else:
            writer.add_listing(asdict(item))
    return writer.finish(start_url=str(path.resolve()), spider="file-import", finish_reason="finished",
                         counts={"pages": 0, "rows": len(table)})
