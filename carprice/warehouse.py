"""The DuckDB warehouse: one file, short-lived connections, every write in one transaction.

DuckDB lets one process write at a time, so nothing here holds a connection open between calls.
The tables belong to the stages: each domain's ``store`` module declares its tables' DDL and holds
its queries; this module only connects, creates those tables, and offers the few generic operations
the stores share.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

import duckdb
import pandas as pd

# Another process (a second `carprice` command on the same folder) holds the file only for one unit of work;
# a connection waits this long for it before giving up with DuckDB's lock error.
LOCK_WAIT_S = 120.0


def _is_lock_error(exc: duckdb.Error) -> bool:
    return isinstance(exc, duckdb.IOException) and "lock" in str(exc).lower()


@functools.cache
def _schema() -> tuple[str, ...]:
    """Every stage's DDL, in the order data flows (a store's tables may refer to an earlier stage's)."""
    from carprice.ingest import store as ingest
    from carprice.money import store as money
    from carprice.monitoring import store as monitoring
    from carprice.training import store as training
    from carprice.validation import store as validation

    return (*ingest.DDL, *money.DDL, *validation.DDL, *training.DDL, *monitoring.DDL)


class Warehouse:
    """Reads and writes the warehouse file; each method opens and closes its own connection.

    ``read_only`` makes every connection read-only (a published snapshot: the price API reads the registry and the
    listings through the same stores without ever writing or creating tables).
    """

    def __init__(self, path: Path | str, lock_wait_s: float = LOCK_WAIT_S, read_only: bool = False):
        self.path = Path(path)
        self.lock_wait_s = lock_wait_s
        self.read_only = read_only

    def _open(self, read_only: bool) -> duckdb.DuckDBPyConnection:
        """Open the file, waiting up to ``lock_wait_s`` while another process holds it."""
        deadline, pause = time.monotonic() + self.lock_wait_s, 0.05
        while True:
            try:
                return duckdb.connect(str(self.path), read_only=read_only)
            except duckdb.Error as exc:
                if not _is_lock_error(exc) or time.monotonic() + pause > deadline:
                    raise
            time.sleep(pause)
            pause = min(pause * 2, 1.0)

    @contextlib.contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection for one unit of work; the schema exists before any write."""
        read_only = read_only or self.read_only
        if not read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        con = self._open(read_only)
        try:
            if not read_only:
                for ddl in _schema():
                    if isinstance(ddl, str):
                        con.execute(ddl)
                    else:  # a migration of a table an earlier version created
                        ddl(con)
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

    def count(self, table: str) -> int:
        """Rows in ``table``; 0 when it does not exist yet (tables built by assets appear on first run)."""
        with self.connect() as con:
            exists = con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = ?",
                                 [table]).fetchone()[0]
            return int(con.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]) if exists else 0

    def column_types(self, table: str) -> dict[str, str]:
        """Column name -> SQL type of ``table``, in table order (empty when it does not exist)."""
        rows = self.query("SELECT column_name, data_type FROM information_schema.columns WHERE table_name = ? "
                          "ORDER BY ordinal_position", [table])
        return dict(zip(rows["column_name"], rows["data_type"]))

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


def rename_columns(table: str, renames: Mapping[str, str]) -> Callable[[duckdb.DuckDBPyConnection], None]:
    """A schema step (a store's DDL may hold it) renaming ``table``'s columns that an earlier version named
    ``old``; a table without them is left alone."""

    def migrate(con: duckdb.DuckDBPyConnection) -> None:
        present = {r[0] for r in con.execute("SELECT column_name FROM information_schema.columns "
                                             "WHERE table_name = ?", [table]).fetchall()}
        for old, new in renames.items():
            if old in present and new not in present:
                con.execute(f'ALTER TABLE "{table}" RENAME COLUMN "{old}" TO "{new}"')

    return migrate


def insert(con: duckdb.DuckDBPyConnection, table: str, rows: Sequence[Mapping[str, object]], *,
           replace: bool = False) -> None:
    """Insert ``rows`` (dicts with the same keys) into ``table`` by column name, never by position.

    ``replace`` makes it an upsert on the table's primary key.
    """
    if not rows:
        return
    columns = list(rows[0])
    verb = "INSERT OR REPLACE" if replace else "INSERT"
    con.executemany(f"{verb} INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
                    [[row[c] for c in columns] for row in rows])
