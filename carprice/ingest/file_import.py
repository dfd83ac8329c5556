"""Land an existing data set (CSV, Parquet or JSON lines) as a batch, so exports feed the same checks.

Columns are mapped onto the spider's raw fields (``--map KM=mileage``, or a template of several columns,
``--map {Mfg_Year}-{Mfg_Month}=first_registration``); common names map by default. What the file does not
say can be given once for every row (``--set make=Toyota``, ``--currency EUR``, ``--power-unit hp``).
Every row goes through the spider's own normalization and row rules, and lands through the same
BatchWriter, so an imported batch is indistinguishable downstream from a crawled one. ``check_file``
does all of it but writes nothing, so a person can see the mapping and the rejects before anything lands.
"""

from __future__ import annotations

import dataclasses
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from scrapers import normalize
from scrapers.batch_writer import BatchWriter, safe_name
from scrapers.items import CarListing, Reject
from scrapers.pipelines import listing_problem, normalize_listing, reject_detail

# The raw fields a file column or a constant may fill; the normalized ones are computed from them.
RAW_FIELDS = {f.name for f in dataclasses.fields(CarListing)} - {
    "source", "scraped_at", "page_format", "source_fields", "properties", "make", "model_year", "first_registration",
    "mileage_km", "fuel", "transmission", "body", "power_kw", "doors", "condition", "price", "currency",
    "seller_type", "listed_at"}
# A person names a field as the listing has it ("mileage") or as the spider's raw field ("mileage_raw").
FIELD_NAMES = {f: f for f in RAW_FIELDS} | {f.removesuffix("_raw"): f for f in RAW_FIELDS}
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
# Fields an import cannot do without (the spider's row rules reject a listing missing any of them).
NEEDED = ("make_raw", "model", "price_raw")
# Units a person may state for a whole file: option value -> the text the normalizer reads as that unit.
MILEAGE_UNITS = {"km": "km", "mi": "mi"}
POWER_UNITS = {"kw": "kW", "hp": "hp", "ps": "PS"}
# A unit field and the value field whose own text may already name the unit ("45,000 miles", "90 hp").
UNIT_OF = {"mileage_unit_raw": "mileage_raw", "power_unit_raw": "power_raw"}
_TEMPLATE_COLUMN = re.compile(r"\{([^{}]+)\}")
# How many rejects a dry run shows, how much of each one's detail (the raw value, then the row), and how many
# reasons a headline names.
SHOWN_REJECTS = 5
SHOWN_DETAIL_CHARS = 300
HEADLINE_REASONS = 3


class FileImportError(ValueError):
    """A file that cannot be imported: unknown format, unreadable, bad column map, constant or unit."""


def field_name(name: str) -> str:
    """The raw field a person's field name means ("mileage" -> "mileage_raw"); FileImportError if none."""
    raw = FIELD_NAMES.get(name.strip())
    if raw is None:
        known = ", ".join(sorted(shown_field(f) for f in RAW_FIELDS))
        raise FileImportError(f"unknown field {name.strip()!r}; fields: {known}")
    return raw


def shown_field(raw: str) -> str:
    """The name a person reads for a raw field ("mileage_raw" -> "mileage")."""
    return raw.removesuffix("_raw")


def _pairs(pairs: list[str], what: str, shape: str) -> Iterator[tuple[str, str]]:
    for pair in pairs:
        left, sep, right = pair.partition("=")
        if not sep or not left.strip() or not right.strip():
            raise FileImportError(f"{what} look like {shape}, got {pair!r}")
        yield left.strip(), right.strip()


def parse_column_map(pairs: list[str]) -> dict[str, str]:
    """``["KM=mileage", "{Y}-{M}=first_registration"]`` -> {raw field: column or template}; FileImportError if bad."""
    out = {}
    for column, name in _pairs(pairs, "column map entries", "column=field"):
        target = field_name(name)
        if target in out:
            raise FileImportError(f"field {name!r} is mapped twice: from {out[target]!r} and {column!r}")
        out[target] = column
    return out


def parse_constants(pairs: list[str]) -> dict[str, str]:
    """``["make=Toyota"]`` -> {"make_raw": "Toyota"}: values for the rows that do not state them."""
    out = {}
    for name, value in _pairs(pairs, "constants", "field=value"):
        target = field_name(name)
        if target == "url":  # one URL for every row would make them all one listing
            raise FileImportError("url identifies each listing: map it from a column, it cannot be one value")
        if target in out and out[target] != value:
            raise FileImportError(f"field {name!r} is set twice: to {out[target]!r} and {value!r}")
        out[target] = value
    return out


def unit_constants(currency: str | None = None, mileage_unit: str | None = None,
                   power_unit: str | None = None) -> dict[str, str]:
    """The raw fields that state a file's currency and units; FileImportError for one the platform cannot read."""
    out: dict[str, str] = {}
    if currency is not None:
        code = currency.strip().upper()
        if not normalize.currency_code(code):
            # Which currencies have rates is the warehouse's business: a currency with none is excluded at cleaning.
            raise FileImportError(f"unknown currency {currency!r}: give an ISO 4217 code such as EUR or USD")
        out["currency_raw"] = code
    for option, value, units, target in (("mileage unit", mileage_unit, MILEAGE_UNITS, "mileage_unit_raw"),
                                         ("power unit", power_unit, POWER_UNITS, "power_unit_raw")):
        if value is None:
            continue
        if value.strip().lower() not in units:
            raise FileImportError(f"unknown {option} {value!r}; use one of {', '.join(units)}")
        out[target] = units[value.strip().lower()]
    return out


def import_constants(pairs: list[str], currency: str | None = None, mileage_unit: str | None = None,
                     power_unit: str | None = None) -> dict[str, str]:
    """``--set`` pairs and the unit options as one set of constants; a currency or unit is checked either way."""
    constants = parse_constants(pairs)
    units = {"currency_raw": currency, "mileage_unit_raw": mileage_unit, "power_unit_raw": power_unit}
    for target, option in units.items():
        given = constants.pop(target, None)
        if given is not None and option is not None and given.strip().lower() != option.strip().lower():
            raise FileImportError(f"{shown_field(target)} is given twice: {given!r} with --set and {option!r} "
                                  f"with --{shown_field(target).replace('_', '-')}")
        units[target] = option if option is not None else given
    return constants | unit_constants(units["currency_raw"], units["mileage_unit_raw"], units["power_unit_raw"])


def template_columns(spec: str) -> list[str]:
    """The file columns a mapping reads: the ``{column}`` names of a template, else the column itself."""
    return _TEMPLATE_COLUMN.findall(spec) or [spec]


def column_value(row: dict[str, object], spec: str) -> str | None:
    """A mapped value of ``row``: the column's text, or the template filled in (None if any column is empty)."""
    columns = _TEMPLATE_COLUMN.findall(spec)
    if not columns:
        value = row[spec]
        return None if value is None else str(value)
    if any(row[c] is None for c in columns):
        return None
    return _TEMPLATE_COLUMN.sub(lambda m: str(row[m.group(1)]), spec)


@dataclass(frozen=True)
class ImportPlan:
    """How a file's rows become listings: a column or template per field, constants, and the columns left over."""

    columns: dict[str, str]  # raw field -> column name or template
    constants: dict[str, str] = field(default_factory=dict)  # raw field -> value for rows that do not say
    unmapped: tuple[str, ...] = ()

    def describe(self) -> list[str]:
        """The mapping as lines a person reads: file column -> listing field, constants, unmapped columns."""
        lines = [f"  {spec} -> {shown_field(f)}" for f, spec in sorted(self.columns.items(), key=lambda kv: kv[1])]
        lines += [f"  (constant) {shown_field(f)} = {value!r} where the file does not say"
                  for f, value in sorted(self.constants.items())]
        lines.append(f"  not read: {', '.join(self.unmapped)}" if self.unmapped else "  not read: none")
        return lines


def plan_import(file_columns: list[str], column_map: dict[str, str] | None = None,
                constants: dict[str, str] | None = None, file_name: str = "the file") -> ImportPlan:
    """Which column feeds each field (the person's map over the default names); FileImportError if unusable."""
    column_map, constants = column_map or {}, constants or {}
    missing = [c for spec in column_map.values() for c in template_columns(spec) if c not in file_columns]
    if missing:
        raise FileImportError(f"mapped columns not in {file_name}: {missing}; columns: {list(file_columns)}")
    columns: dict[str, str] = {}
    for column in file_columns:
        default = DEFAULT_MAP.get(column.lower())
        if default and default not in columns:
            columns[default] = column
    columns.update(column_map)
    lacking = [shown_field(f) for f in NEEDED if f not in columns and f not in constants]
    if lacking:
        raise FileImportError(f"{file_name} needs columns for make, model and price (map them with --map "
                              f"COLUMN=FIELD, or give one value for every row with --set FIELD=VALUE); lacking: "
                              f"{', '.join(lacking)}; mapped: {describe_columns(columns)}")
    read = {c for spec in columns.values() for c in template_columns(spec)}
    return ImportPlan(columns=columns, constants=dict(constants),
                      unmapped=tuple(c for c in file_columns if c not in read))


def describe_columns(columns: dict[str, str]) -> str:
    """``{"mileage_raw": "KM"}`` -> "KM -> mileage"."""
    return ", ".join(f"{spec} -> {shown_field(f)}" for f, spec in columns.items()) or "nothing"


def _names_unit(unit_field: str, text: str | None) -> bool:
    """Whether a value's own text already states its unit or currency ("45,000 miles", "$ 9,000")."""
    if not text:
        return False
    if unit_field == "currency_raw":
        return normalize.detect_currency(None, text) is not None
    return re.search(r"[A-Za-z]{2,}", text) is not None  # a unit word; a lone "e" is scientific notation


def fill_constants(values: dict[str, str | None], constants: dict[str, str]) -> dict[str, str | None]:
    """``values`` with each constant filled in where the row does not say (empty, or a unit its value omits)."""
    out = dict(values)
    for target, constant in constants.items():
        if out.get(target) is not None:
            continue
        said_in = "price_raw" if target == "currency_raw" else UNIT_OF.get(target)
        if said_in and _names_unit(target, out.get(said_in)):
            continue
        out[target] = constant
    return out


def row_values(row: dict[str, object], plan: ImportPlan) -> dict[str, str | None]:
    """One file row as raw listing fields: mapped columns, then constants where the row says nothing."""
    values = {target: column_value(row, spec) for target, spec in plan.columns.items()}
    # Blank text is no value: a constant fills it, and the row rules see a missing field, not an unreadable one.
    values = {k: (None if v is None or not v.strip() else v) for k, v in values.items()}
    return fill_constants(values, plan.constants)


def convert_rows(table: pd.DataFrame, plan: ImportPlan, source: str, origin: str, page_format: str,
                 scraped_at: str) -> Iterator[CarListing | Reject]:
    """Each row as a normalized listing, or as a reject with its reason, in file order (nothing is written)."""
    for index, row in enumerate(table.to_dict("records")):
        values = row_values(row, plan)
        url = values.pop("url", None) or f"file://{origin}#row={index + 1}"
        item = normalize_listing(CarListing(url=url, source=source, scraped_at=scraped_at, page_format=page_format,
                                            **values))
        problem = listing_problem(item)
        if problem:
            yield Reject(url=url, source=source, scraped_at=scraped_at, reason=problem.reason,
                         detail=reject_detail(problem, str(row)))
        else:
            yield item


# Readers by file type, each giving every value as text or None; pandas reads compressed CSV and JSON lines.
READERS = {
    "csv": lambda path: pd.read_csv(path, dtype=str, keep_default_na=False).replace({"": None}),
    "parquet": lambda path: pd.read_parquet(path).astype(object).where(lambda d: d.notna(), None),
    "jsonl": lambda path: pd.read_json(path, lines=True, dtype=False).astype(object).where(lambda d: d.notna(), None),
}
READERS.update({"pq": READERS["parquet"], "ndjson": READERS["jsonl"], "json": READERS["jsonl"]})
COMPRESSED = (".gz", ".bz2", ".xz", ".zst")
TEXT_TYPES = ("csv", "jsonl", "ndjson", "json")


def file_type(path: Path) -> str:
    """"csv", "parquet", "jsonl"...: the file's extension, looking through a compression suffix (data.csv.gz)."""
    suffixes = [s.lower() for s in path.suffixes]
    if len(suffixes) >= 2 and suffixes[-1] in COMPRESSED and suffixes[-2].lstrip(".") in TEXT_TYPES:
        return suffixes[-2].lstrip(".")
    return path.suffix.lower().lstrip(".")


def read_table(path: Path) -> pd.DataFrame:
    """Read CSV, Parquet or JSON lines (by extension) with every value as text; FileImportError if it has no rows."""
    kind = file_type(path)
    if kind not in READERS:
        raise FileImportError(f"unknown file type {path.suffix.lower()!r}: use .csv, .parquet or .jsonl "
                              f"(.csv and .jsonl may be compressed: {', '.join(COMPRESSED)})")
    try:
        table = READERS[kind](path) if path.stat().st_size else None
    except pd.errors.EmptyDataError:  # a CSV of blank lines
        table = None
    except (OSError, ValueError, EOFError) as exc:  # EOFError: a cut-off compressed file
        raise FileImportError(f"cannot read {path}: {exc}") from exc
    # Said plainly: a header alone would otherwise land an empty batch, and an empty file lack every column.
    if table is None or len(table.columns) == 0:
        raise FileImportError(f"{path.name} is empty")
    if len(table) == 0:
        raise FileImportError(f"{path.name} has no rows")
    return table


def _read_and_plan(path: Path, column_map: dict[str, str] | None,
                   constants: dict[str, str] | None) -> tuple[pd.DataFrame, ImportPlan]:
    table = read_table(path)
    return table, plan_import(list(table.columns), column_map, constants, path.name)


def import_file(path: Path, landing_dir: Path, source: str, column_map: dict[str, str] | None = None,
                constants: dict[str, str] | None = None) -> Path:
    """Land ``path`` as a batch of ``source``; returns the batch folder. Rows that fail the rules are rejects."""
    table, plan = _read_and_plan(path, column_map, constants)
    writer = BatchWriter(landing_dir, source)
    rows = convert_rows(table, plan, source, str(path.resolve()), f"file:{file_type(path)}",
                        datetime.now(UTC).isoformat())
    for item in rows:
        if isinstance(item, Reject):
            writer.add_reject(asdict(item))
        else:
            writer.add_listing(asdict(item))
    return writer.finish(start_url=str(path.resolve()), spider="file-import", finish_reason="finished",
                         counts={"pages": 0, "rows": len(table)})


def rejects_headline(rows: int, reasons: dict[str, int]) -> str:
    """"1,380 of 1,436 rows rejected: missing price 1,200, unreadable mileage 180, ...", or all rows read."""
    rejected = sum(reasons.values())
    if not rejected:
        return f"all {rows:,} rows read as listings"
    top = Counter(reasons).most_common()
    named = ", ".join(f"{reason} {n:,}" for reason, n in top[:HEADLINE_REASONS])
    rest = sum(n for _, n in top[HEADLINE_REASONS:])
    more = f", {len(top) - HEADLINE_REASONS} other reasons {rest:,}" if rest else ""
    return f"{rejected:,} of {rows:,} rows rejected: {named}{more}"


def most_rejected(rows: int, reasons: dict[str, int]) -> bool:
    """Whether most of a file's rows were rejected: then the mapping, not the data, is the likely cause."""
    return sum(reasons.values()) * 2 > rows


@dataclass
class ImportCheck:
    """What an import would do, written nowhere: the mapping, the tally of rejects, and the first few of them."""

    file_name: str
    plan: ImportPlan
    rows: int = 0
    accepted: int = 0
    reasons: Counter = field(default_factory=Counter)
    first_rejects: list[Reject] = field(default_factory=list)

    @property
    def rejected(self) -> int:
        return self.rows - self.accepted

    def render(self) -> str:
        """The dry run as text: mapping, would-be accepted and rejected rows, the first rejects with detail."""
        lines = [f"{self.file_name}: {self.rows:,} rows (a dry run: nothing was written)", "mapping:",
                 *self.plan.describe(),
                 f"would land {self.accepted:,} listings and {self.rejected:,} rejects",
                 f"  {rejects_headline(self.rows, dict(self.reasons))}"]
        if self.first_rejects:
            lines.append(f"first {len(self.first_rejects)} rejects:")
            lines += [f"  {r.url}: {r.reason}\n    {_cut(r.detail, SHOWN_DETAIL_CHARS)}" for r in self.first_rejects]
        return "\n".join(lines)


def _cut(text: str, chars: int) -> str:
    return text if len(text) <= chars else f"{text[:chars]}..."


def check_file(path: Path, source: str, column_map: dict[str, str] | None = None,
               constants: dict[str, str] | None = None) -> ImportCheck:
    """What ``import_file`` would land from ``path``, computed without writing anything."""
    safe_name("source", source)
    table, plan = _read_and_plan(path, column_map, constants)
    check = ImportCheck(file_name=path.name, plan=plan, rows=len(table))
    for item in convert_rows(table, plan, source, str(path.resolve()), f"file:{file_type(path)}",
                             datetime.now(UTC).isoformat()):
        if isinstance(item, Reject):
            check.reasons[item.reason] += 1
            if len(check.first_rejects) < SHOWN_REJECTS:
                check.first_rejects.append(item)
        else:
            check.accepted += 1
    return check
