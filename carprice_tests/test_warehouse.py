"""Landing zone and warehouse: batches read strictly, ingested idempotently, in one transaction."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import duckdb
import pandas as pd
import pytest

from carprice.ingest.landing import BatchError, find_batch, read_batch, scan_landing
from carprice.ingest.store import ingest_batch
from carprice.warehouse import Warehouse
from carprice_tests.conftest import copy_batch
from scrapers.batch_writer import BatchWriter


def test_read_batch_refuses_incomplete_folders(tmp_path):
    folder = tmp_path / "src" / "src-1"
    folder.mkdir(parents=True)
    with pytest.raises(BatchError, match="no manifest.json"):
        read_batch(folder)
    (folder / "manifest.json").write_text("{not json")
    with pytest.raises(BatchError, match="not valid JSON"):
        read_batch(folder)
    (folder / "manifest.json").write_text(json.dumps({"batch_id": "src-1"}))
    with pytest.raises(BatchError, match="lacks 'source'"):
        read_batch(folder)
    (folder / "manifest.json").write_text(json.dumps({"batch_id": "src-2", "source": "src"}))
    with pytest.raises(BatchError, match="sits in 'src-1'"):
        read_batch(folder)


def test_scan_landing_skips_batches_still_being_written(tmp_path, crawled_batch):
    copy = copy_batch(crawled_batch, tmp_path)
    (tmp_path / copy.source / f".tmp-{copy.batch_id}x").mkdir()
    batches, broken = scan_landing(tmp_path)
    assert [b.batch_id for b in batches] == [copy.batch_id] and broken == {}
    assert find_batch(tmp_path, copy.batch_id).path == copy.path
    with pytest.raises(BatchError, match="no batch 'nope'"):
        find_batch(tmp_path, "nope")


def test_ingest_is_idempotent_and_keeps_every_row(tmp_path, crawled_batch):
    wh = Warehouse(tmp_path / "wh.duckdb")
    first = ingest_batch(wh, crawled_batch)
    second = ingest_batch(wh, crawled_batch)
    assert first == second == {"listings": crawled_batch.manifest["counts"]["listings"],
                                "rejects": crawled_batch.manifest["counts"]["rejects"]}
    row = wh.query("SELECT * FROM batches").iloc[0]
    assert row["batch_id"] == crawled_batch.batch_id and row["finish_reason"] == "finished"
    raw = wh.query("SELECT price_raw, price, currency, make FROM raw_listings WHERE make_raw = 'VW' LIMIT 1")
    assert raw.iloc[0]["make"] == "Volkswagen"


def test_a_bad_row_is_a_reject_and_a_failed_ingest_leaves_the_previous_rows(tmp_path, crawled_batch):
    copy = copy_batch(crawled_batch, tmp_path / "landing")
    wh = Warehouse(tmp_path / "wh.duckdb")
    before = ingest_batch(wh, copy)
    with open(copy.listings_file, "a", encoding="utf-8") as fh:
        fh.write('{"url": "x", "mileage_km": "not a number"}\n')
    after = ingest_batch(wh, copy)
    assert after == {"listings": before["listings"], "rejects": before["rejects"] + 1}
    (tmp_path / "elsewhere.jsonl").write_text("")
    copy.rejects_file.unlink()
    copy.rejects_file.symlink_to(tmp_path / "elsewhere.jsonl")
    with pytest.raises(BatchError, match="outside its batch folder"):
        ingest_batch(wh, copy)
    assert wh.count("raw_listings") == after["listings"] and wh.count("raw_rejects") == after["rejects"]


def test_empty_batch_ingests_as_zero_rows(tmp_path):
    folder = tmp_path / "src" / "src-empty"
    folder.mkdir(parents=True)
    (folder / "listings.jsonl").write_text("")
    (folder / "manifest.json").write_text(json.dumps({"batch_id": "src-empty", "source": "src", "counts": {}}))
    wh = Warehouse(tmp_path / "wh.duckdb")
    assert ingest_batch(wh, read_batch(folder)) == {"listings": 0, "rejects": 0}


def test_replace_table_is_all_or_nothing(tmp_path):
    wh = Warehouse(tmp_path / "wh.duckdb")
    wh.replace_table("t", pd.DataFrame({"a": [1, 2]}))
    assert wh.replace_table("t", pd.DataFrame({"a": [3]})) == 1
    assert wh.query("SELECT a FROM t")["a"].tolist() == [3]
    assert wh.column_types("t") == {"a": "BIGINT"} and wh.column_types("missing") == {}


def test_an_analyst_on_the_snapshot_never_blocks_writes(tmp_path, crawled_batch):
    wh = Warehouse(tmp_path / "wh.duckdb")
    snapshot = tmp_path / "snapshot.duckdb"
    wh.replace_table("t", pd.DataFrame({"a": [1]}))
    wh.publish_snapshot(snapshot)
    with duckdb.connect(str(snapshot), read_only=True) as analyst:
        ingest_batch(wh, crawled_batch)  # the live file is free although the analyst has a session open
        wh.replace_table("t", pd.DataFrame({"a": [1, 2]}))
        wh.publish_snapshot(snapshot)
        assert analyst.execute("SELECT count(*) FROM t").fetchone()[0] == 1, "an open session keeps its view"
    with duckdb.connect(str(snapshot), read_only=True) as fresh:
        assert fresh.execute("SELECT count(*) FROM t").fetchone()[0] == 2
        assert fresh.execute("SELECT count(*) FROM raw_listings").fetchone()[0] > 0


@pytest.mark.parametrize(("manifest", "message"), [
    ({"batch_id": "src-1", "source": "src", "files": {"listings": "/etc/passwd"}}, "plain file name"),
    ({"batch_id": "src-1", "source": "src", "files": {"listings": "../other/listings.jsonl"}}, "plain file name"),
    ({"batch_id": "src-1", "source": "src", "files": {"rejects": ".."}}, "plain file name"),
    ({"batch_id": "src-1", "source": "src", "files": ["listings.jsonl"]}, "'files' must map"),
    ({"batch_id": "src-1", "source": "../../tmp"}, "a source is a plain name"),
    (["not", "an", "object"], "is not a JSON object"),
    # Values the batches table could not hold: refused when read, never a failed ingest.
    ({"batch_id": "src-1", "source": "src", "started_at": "garbage"}, "started_at must be an ISO date"),
    ({"batch_id": "src-1", "source": "src", "finished_at": 17}, "finished_at must be an ISO date"),
    ({"batch_id": "src-1", "source": "src", "counts": {"listings": "abc"}}, "counts must map"),
    ({"batch_id": "src-1", "source": "src", "counts": {"listings": -1}}, "counts must map"),
    ({"batch_id": "src-1", "source": "src", "counts": [1]}, "counts must map"),
    ({"batch_id": "src-1", "source": "src", "finish_reason": {"a": 1}}, "finish_reason must be text"),
])
def test_a_manifest_cannot_point_outside_its_folder(tmp_path, manifest, message):
    folder = tmp_path / "src" / "src-1"
    folder.mkdir(parents=True)
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BatchError, match=message):
        read_batch(folder)
    batches, broken = scan_landing(tmp_path)
    assert batches == [] and message in broken[str(folder)], "the sensor skips it and says why"


def test_a_batch_folder_that_is_a_symlink_is_refused(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "manifest.json").write_text(json.dumps({"batch_id": "src-1", "source": "src"}))
    (tmp_path / "landing" / "src").mkdir(parents=True)
    (tmp_path / "landing" / "src" / "src-1").symlink_to(elsewhere, target_is_directory=True)
    batches, broken = scan_landing(tmp_path / "landing")
    assert batches == [] and "is a symlink" in broken[str(tmp_path / "landing" / "src" / "src-1")]


def test_batch_ids_and_sources_are_plain_names(tmp_path):
    with pytest.raises(BatchError, match="a batch id is a plain name"):
        find_batch(tmp_path, "../../etc")
    with pytest.raises(ValueError, match="a source is a plain name"):
        BatchWriter(tmp_path / "landing", "../../escaped")
    with pytest.raises(ValueError, match="a batch id is a plain name"):
        BatchWriter(tmp_path / "landing", "src", batch_id="a/b")
    assert list(tmp_path.iterdir()) == [], "nothing was written anywhere"


def _hold_the_file(path, seconds: float) -> subprocess.Popen:
    """Another process that holds the warehouse file open for ``seconds`` (a second `carprice` command)."""
    code = ("import duckdb, sys, time; con = duckdb.connect(sys.argv[1]); print('open', flush=True); "
            "time.sleep(float(sys.argv[2])); con.close()")
    holder = subprocess.Popen([sys.executable, "-c", code, str(path), str(seconds)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "open"
    return holder


def test_a_connection_waits_while_another_process_holds_the_file(tmp_path):
    wh = Warehouse(tmp_path / "wh.duckdb", lock_wait_s=30)
    wh.replace_table("t", pd.DataFrame({"x": [1, 2]}))
    holder = _hold_the_file(wh.path, 1.5)
    started = time.monotonic()
    assert wh.count("t") == 2
    assert time.monotonic() - started > 0.5, "the file was held: the read had to wait for it"
    holder.wait()


def test_a_connection_gives_up_with_the_lock_error_after_its_wait(tmp_path):
    wh = Warehouse(tmp_path / "wh.duckdb", lock_wait_s=0.3)
    wh.replace_table("t", pd.DataFrame({"x": [1]}))
    holder = _hold_the_file(wh.path, 5)
    try:
        with pytest.raises(duckdb.IOException, match="(?i)lock"):
            wh.count("t")
    finally:
        holder.kill()
        holder.wait()
