"""`carprice sql`: an analyst's query on the published snapshot, answered as a table; bad queries and a folder
without a snapshot are one-line errors."""

from __future__ import annotations

import os
import subprocess
import sys

import duckdb
import pytest

from carprice.analysts import SnapshotQueryError, query_snapshot, sql_command
from carprice.cli import main


@pytest.fixture
def snapshot(tmp_path):
    path = tmp_path / "data" / "warehouse-snapshot.duckdb"
    path.parent.mkdir()
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE TABLE deals AS SELECT 'VW' AS make, 9500 AS market_price UNION ALL SELECT 'BMW', 21000")
    return path


def test_a_query_is_answered_as_a_table_with_its_row_count(snapshot):
    table = query_snapshot(snapshot, "SELECT make, market_price FROM deals ORDER BY market_price")
    assert table.splitlines()[1].split("│")[1:3] == ["  make   ", " market_price "]
    assert "│ VW      │         9500 │" in table and "2 rows" in table
    csv = query_snapshot(snapshot, "SELECT * FROM deals ORDER BY make", csv=True)
    assert csv == "make,market_price\nBMW,21000\nVW,9500"


def test_the_snapshot_is_never_written(snapshot):
    with pytest.raises(SnapshotQueryError, match="read-only"):
        query_snapshot(snapshot, "DELETE FROM deals")
    assert "2 rows" in query_snapshot(snapshot, "SELECT * FROM deals")


def test_a_bad_query_and_a_missing_snapshot_say_what_is_wrong(snapshot, tmp_path):
    with pytest.raises(SnapshotQueryError, match="CatalogException.*no_such_table"):
        query_snapshot(snapshot, "SELECT * FROM no_such_table")
    with pytest.raises(SnapshotQueryError, match="ParserException"):
        query_snapshot(snapshot, "SELEKT 1")
    with pytest.raises(SnapshotQueryError, match="no query given"):
        query_snapshot(snapshot, "  \n")
    with pytest.raises(SnapshotQueryError, match=f"no published snapshot at {tmp_path / 'elsewhere'}"):
        query_snapshot(tmp_path / "elsewhere" / "warehouse-snapshot.duckdb", "SELECT 1")


def test_the_command_prints_the_table_and_fails_with_status_2(snapshot, tmp_path, capsys):
    data_dir = str(snapshot.parent)
    assert main(["sql", "--data-dir", data_dir, "SELECT count(*) AS n FROM deals"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[4].split() == ["│", "2", "│"] and out.endswith("1 row\n")
    assert main(["sql", "--data-dir", data_dir, "SELECT nope FROM deals"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("carprice: error: BinderException") and "nope" in err
    assert main(["sql", "--data-dir", str(tmp_path / "empty"), "SELECT 1"]) == 2
    assert "no published snapshot" in capsys.readouterr().err


def test_the_hint_is_a_command_line_that_runs(snapshot):
    assert sql_command(None) == ".venv/bin/carprice sql 'SHOW TABLES'"
    assert sql_command(snapshot.parent / "my dir", "SELECT 1") == \
        f".venv/bin/carprice sql --data-dir '{snapshot.parent / 'my dir'}' 'SELECT 1'"


@pytest.mark.integration
def test_carprice_sql_answers_on_a_published_snapshot_from_stdin_and_arguments(tmp_path):
    from carprice_tests.serving.conftest import build_installation, train_and_promote

    inst = build_installation(tmp_path)
    version = train_and_promote(inst)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARPRICE_") and k != "DAGSTER_HOME"}
    command = [sys.executable, "-m", "carprice.cli", "sql", "--data-dir", str(inst.settings.data_dir)]
    champion = subprocess.run([*command, "SELECT version, status FROM model_registry"], env=env,
                              capture_output=True, text=True, timeout=120)
    assert champion.returncode == 0, champion.stderr
    assert version in champion.stdout and "champion" in champion.stdout and "1 row" in champion.stdout
    tables = subprocess.run(command, input="SHOW TABLES", env=env, capture_output=True, text=True, timeout=120)
    assert tables.returncode == 0 and "listing_valuations" in tables.stdout and "deals" in tables.stdout
    refused = subprocess.run([*command, "DROP TABLE deals"], env=env, capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2 and refused.stderr.startswith("carprice: error: ") and "read-only" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1, "one line, no traceback"
