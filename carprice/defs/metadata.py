"""What every asset shows in the UI besides its own numbers: its owner, its layer, and a table's shape."""

import dagster as dg
import pandas as pd

# Who answers for the platform's data.
OWNERS = ["team:carprice"]


def layer(name: str) -> dict[str, str]:
    """The asset's tags: which layer of the warehouse it is (landing, raw, clean, features, model, serving...)."""
    return {"layer": name}


def table_metadata(df: pd.DataFrame) -> dict:
    """Row count and column schema of a table asset (the UI's columns tab and lineage use them)."""
    return {
        "dagster/row_count": len(df),
        "dagster/column_schema": dg.TableSchema(
            columns=[dg.TableColumn(name=str(c), type=str(t)) for c, t in df.dtypes.items()]),
    }


def schema_metadata(columns: dict[str, str]) -> dict:
    """The column schema of a table whose columns are declared (name -> SQL type) rather than computed."""
    return {"dagster/column_schema": dg.TableSchema(
        columns=[dg.TableColumn(name=name, type=sql) for name, sql in columns.items()])}
