"""What every asset shows in the UI besides its own numbers: its owner, its layer, a table's shape, and numbers
written the way a reader takes them in (whole units of the market currency, percentages, Markdown tables instead
of JSON)."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence

import dagster as dg

from carprice.warehouse import Warehouse

# Who answers for the platform's data.
OWNERS = ["team:carprice"]


def layer(name: str) -> dict[str, str]:
    """The asset's tags: which layer of the warehouse it is (landing, raw, clean, features, model, serving...)."""
    return {"layer": name}


def table_metadata(wh: Warehouse, table: str) -> dict:
    """Row count and column schema (SQL types, as analysts see them) of a table the asset just wrote; the UI's
    columns tab and column lineage use them."""
    return {"dagster/row_count": wh.count(table), **schema_metadata(wh.column_types(table))}


def schema_metadata(columns: dict[str, str]) -> dict:
    """The column schema of a table from its columns (name -> SQL type)."""
    return {"dagster/column_schema": dg.TableSchema(
        columns=[dg.TableColumn(name=name, type=sql) for name, sql in columns.items()])}


def known(value: float | None) -> bool:
    """Whether ``value`` is a finite number (not None, NaN or infinite)."""
    return value is not None and math.isfinite(float(value))


def whole_amount(value: float) -> int:
    """An amount of money as the UI shows it: whole units of the market currency (the metadata's ``currency``)."""
    return round(float(value))


def percent(fraction: float, digits: int = 1) -> float:
    """A fraction (0.1186) as a plotted percentage (11.9)."""
    return round(100 * float(fraction), digits)


def percent_text(fraction: float | None, digits: int = 1, signed: bool = False) -> str:
    """A fraction as text: "11.9%" ("+19.0%" when ``signed``), "n/a" when unknown."""
    if not known(fraction):
        return "n/a"
    return f"{100 * float(fraction):{'+' if signed else ''}.{digits}f}%"


def money_text(value: float | None, currency: str) -> str:
    """An amount as text with its currency: "1,947 EUR", "n/a" when unknown."""
    return f"{float(value):,.0f} {currency}" if known(value) else "n/a"


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence[object]], right: Iterable[int] = ()) -> str:
    """A Markdown table (``right``: the indexes of columns aligned right, numbers); pipes in cells are escaped."""
    right = set(right)

    def cell(value: object) -> str:
        return str(value).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(headers) + " |",
             "|" + "|".join("---:" if i in right else "---" for i in range(len(headers))) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _plain(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list | tuple):
        return ", ".join(_plain(v) for v in value) or "none"
    if isinstance(value, Mapping):
        return json.dumps(value, default=str)
    return str(value)


def key_value_table(values: Mapping[str, object], prefix: str = "") -> str:
    """Nested numbers and lists as a two-column Markdown table, one row per leaf ("outer.inner | value")."""
    def leaves(d: Mapping, path: str) -> Iterable[tuple[str, str]]:
        for key, value in d.items():
            name = f"{path}{key}"
            if isinstance(value, Mapping) and value:
                yield from leaves(value, name + ".")
            else:
                yield name, _plain(value)
    rows = list(leaves(values, prefix))
    return markdown_table(["measure", "value"], rows) if rows else "none"


def bullet_list(lines: Iterable[str]) -> str:
    """Lines as a Markdown bullet list ("none" when there are none)."""
    return "\n".join(f"- {line}" for line in lines) or "none"
