"""Unfinished batches in the landing zone: a ``.tmp-`` folder names its writer, and goes once the writer is gone."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time

from carprice.ingest.landing import STALE_TMP_AFTER_S, remove_stale_tmp, scan_landing, tmp_is_stale
from scrapers.batch_writer import BatchWriter

HOST = socket.gethostname()


def test_a_tmp_folder_is_stale_when_its_writer_on_this_host_is_gone_or_when_it_is_a_day_old():
    alive = {7}.__contains__
    fresh, old = 60.0, STALE_TMP_AFTER_S + 1
    assert not tmp_is_stale({"pid": 7, "host": HOST}, fresh, HOST, alive), "its writer is still writing"
    assert tmp_is_stale({"pid": 8, "host": HOST}, fresh, HOST, alive), "its writer died"
    assert not tmp_is_stale({"pid": 8, "host": "other"}, fresh, HOST, alive), "a process elsewhere: cannot tell"
    assert not tmp_is_stale(None, fresh, HOST, alive), "no writer named (yet): cannot tell"
    assert not tmp_is_stale({"pid": "8", "host": HOST}, fresh, HOST, alive), "not a process id"
    for writer in ({"pid": 7, "host": HOST}, {"pid": 8, "host": "other"}, None):
        assert tmp_is_stale(writer, old, HOST, alive), "nothing written for a day: abandoned, whoever wrote it"


def test_the_writer_file_names_the_writing_process_and_is_not_part_of_the_batch(tmp_path):
    writer = BatchWriter(tmp_path, "src")
    assert json.loads((writer.tmp_dir / ".writer").read_text()) == {"pid": os.getpid(), "host": HOST}
    batch = writer.finish(finish_reason="finished")
    assert sorted(p.name for p in batch.iterdir()) == ["listings.jsonl", "manifest.json", "rejects.jsonl"]
    discarded = BatchWriter(tmp_path, "src")
    discarded.add_listing({"url": "http://x/1"})
    discarded.discard()
    assert not discarded.tmp_dir.exists() and not discarded.final_dir.exists()


def test_remove_stale_tmp_removes_only_the_folders_whose_writer_is_gone(tmp_path):
    live = BatchWriter(tmp_path, "src")  # written by this process
    dead, elsewhere = BatchWriter(tmp_path, "src"), BatchWriter(tmp_path, "other")
    exited = _exited_pid()
    (dead.tmp_dir / ".writer").write_text(json.dumps({"pid": exited, "host": HOST}))
    (elsewhere.tmp_dir / ".writer").write_text(json.dumps({"pid": exited, "host": "another-host"}))
    unnamed_old, unnamed_new = tmp_path / "src" / ".tmp-old", tmp_path / "src" / ".tmp-new"
    for folder in (unnamed_old, unnamed_new):
        folder.mkdir()
        (folder / "listings.jsonl").write_text("")
    day_ago = time.time() - STALE_TMP_AFTER_S - 60
    for path in (unnamed_old, unnamed_old / "listings.jsonl"):
        os.utime(path, (day_ago, day_ago))
    complete = BatchWriter(tmp_path, "src").finish(finish_reason="finished")

    assert set(remove_stale_tmp(tmp_path)) == {dead.tmp_dir, unnamed_old}
    assert not dead.tmp_dir.exists() and not unnamed_old.exists()
    assert live.tmp_dir.exists() and elsewhere.tmp_dir.exists() and unnamed_new.exists()
    assert [b.path for b in scan_landing(tmp_path)[0]] == [complete], "complete batches are never touched"
    assert remove_stale_tmp(tmp_path / "nothing here") == []


def _exited_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid
