"""SQL for analysts on the published read-only snapshot of the warehouse: one query in, a readable table out.

The snapshot is a copy replaced by a rename whenever a run publishes, so a query never waits for a run and a run
never waits for a query (the live warehouse file would block both ways). ``carprice sql`` is the command.
"""

from __future__ import annotations

import contextlib
import io
import shlex
from pathlib import Path

import duckdb


class SnapshotQueryError(RuntimeError):
    """The query could not be answered: no snapshot published yet, or DuckDB refused the SQL (its message kept)."""


def query_snapshot(snapshot: Path, sql: str, *, max_rows: int = 40, max_width: int = 160, csv: bool = False) -> str:
    """Run ``sql`` on the snapshot opened read-only and return its result as a box table (at most ``max_rows``
    rows shown, the count of all said) or, with ``csv``, every row as CSV; statements without a result say so."""
    if not sql.strip():
        raise SnapshotQueryError("no query given: pass the SQL as an argument or on stdin")
    if not snapshot.exists():
        raise SnapshotQueryError(f"no published snapshot at {snapshot} yet: a batch or training run publishes one "
                                 "(carprice run with the same --data-dir)")
    try:
        con = duckdb.connect(str(snapshot), read_only=True)
    except duckdb.Error as exc:
        raise SnapshotQueryError(f"cannot open the snapshot {snapshot}: {exc}") from exc
    try:
        relation = con.sql(sql)
        if relation is None:
            return "OK (the statement returned no rows)"
        if csv:
            return relation.df().to_csv(index=False).rstrip("\n")
        shown = io.StringIO()
        with contextlib.redirect_stdout(shown):
            relation.show(max_rows=max_rows, max_width=max_width)
        return _with_row_count(shown.getvalue().rstrip("\n"))
    except duckdb.Error as exc:
        # DuckDB's own message says what is wrong and where (a parser error, an unknown table with candidates,
        # a write refused because the snapshot is read-only).
        raise SnapshotQueryError(f"{type(exc).__name__}: {exc}") from exc
    finally:
        con.close()


def _with_row_count(table: str) -> str:
    """DuckDB's box table, ending with the number of rows (DuckDB says it only when it leaves rows out)."""
    lines = table.splitlines()
    if not lines or not lines[-1].startswith("└"):
        return table
    body = next((i for i, line in enumerate(lines) if line.startswith("├")), len(lines) - 1)
    rows = len(lines) - body - 2
    return f"{table}\n  {rows} row{'' if rows == 1 else 's'}"


# The query a hint suggests: it answers on any snapshot, and names the tables there are to ask about.
FIRST_QUERY = "SHOW TABLES"


def sql_command(data_dir: Path | None, query: str = FIRST_QUERY) -> str:
    """The ``carprice sql`` command line that queries the snapshot of the installation in ``data_dir`` (None: the
    default installation, which needs no option)."""
    option = f" --data-dir {shlex.quote(str(data_dir))}" if data_dir is not None else ""
    return f".venv/bin/carprice sql{option} {shlex.quote(query)}"
