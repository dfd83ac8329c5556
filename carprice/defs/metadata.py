"""What every asset shows in the UI besides its own numbers: its owner, its layer, and a table's shape."""

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
