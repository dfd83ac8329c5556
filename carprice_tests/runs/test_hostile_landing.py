"""Hostile folders and files in the landing zone beside a real crawl: one `carprice run` must process the real
batch, turn bad values into rejects, list what it cannot read with the reason, and read nothing outside.

What anyone who can write the landing zone (a standalone `scrapy crawl` is meant to) might leave there.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

pytestmark = pytest.mark.integration

SECRET = "carprice-test-secret-line"


def batch(landing: Path, name: str, manifest: dict | None = None, listings: str | None = None) -> Path:
    folder = landing / "hostile" / name
    folder.mkdir(parents=True)
    if listings is not None:
        (folder / "listings.jsonl").write_text(listings)
    (folder / "manifest.json").write_text(json.dumps({"batch_id": name, "source": "hostile", **(manifest or {})}))
    return folder


def listing(**values) -> str:
    row = {"url": "https://cars.example/1", "source": "hostile", "scraped_at": "2026-02-10T06:00:00+00:00",
           "page_format": "json-ld", "make": "VW", "model": "Golf", "price": 9000.0, "currency": "EUR",
           "mileage_km": 80000.0, "model_year": 2018, "listed_at": "2026-02-10"}
    return json.dumps({**row, **values})


def test_hostile_landing_zone_next_to_a_real_crawl(tmp_path):
    data = tmp_path / "data"
    landing = data / "landing"
    outside = tmp_path / "outside.jsonl"
    outside.write_text(listing(title=SECRET) + "\n")
    batch(landing, "points_outside", {"files": {"listings": str(outside)}})
    batch(landing, "climbs_out", {"files": {"listings": "../../../outside.jsonl"}})
    linked = batch(landing, "symlinked_file", listings=None)
    (linked / "listings.jsonl").symlink_to(outside)
    (landing / "hostile" / "symlinked_folder").symlink_to(linked, target_is_directory=True)
    fifo = batch(landing, "fifo_file")
    os.mkfifo(fifo / "listings.jsonl")
    batch(landing, "bad_manifest_values", {"started_at": "yesterday", "counts": {"listings": "many"}})
    batch(landing, "wrong_id", {"batch_id": "someone_else"})
    (landing / "hostile" / "not_json").mkdir()
    (landing / "hostile" / "not_json" / "manifest.json").write_bytes(b"\xff\xfe{")
    bad_values = batch(landing, "bad_values", {"counts": {"listings": 5}}, listings="\n".join([
        listing(), listing(url="https://cars.example/2", doors=1e30), listing(url="https://cars.example/3", price="a"),
        "{not json", "[1, 2]", listing(url="https://cars.example/4", model_year=10**30)]) + "\n")

    env = {k: v for k, v in os.environ.items() if not k.startswith("CARPRICE_") and k != "DAGSTER_HOME"}
    carprice = str(Path(sys.executable).with_name("carprice"))
    run = subprocess.run([carprice, "run", "--data-dir", str(data), "--listings", "500", "--seed", "3", "--day", "40"],
                         env=env, capture_output=True, text=True, timeout=600)
    # The day's crawl is accepted; the hostile batch beside it is quarantined, and the exit status says one was.
    assert run.returncode == 3, run.stdout[-3000:] + run.stderr[-3000:]
    assert "batch accepted" in run.stdout, "the real crawl went all the way through"
    assert "other batch      bad_values quarantined" in run.stdout

    with duckdb.connect(str(data / "warehouse-snapshot.duckdb"), read_only=True) as con:
        statuses = dict(con.execute("SELECT batch_id, status FROM batch_status").fetchall())
        leaked = con.execute("SELECT count(*) FROM raw_listings WHERE title = ?", [SECRET]).fetchone()[0]
        bad = con.execute("SELECT reason, detail FROM raw_rejects WHERE batch_id = 'bad_values' ORDER BY detail"
                          ).fetchall()
        kept = con.execute("SELECT url FROM raw_listings WHERE batch_id = 'bad_values'").fetchall()
    assert leaked == 0, "nothing outside the landing zone was read"
    # The batch with bad values was ingested: the good row kept, every bad line or value a reject with its reason.
    assert "bad_values" in statuses and kept == [("https://cars.example/1",)]
    reasons = sorted(r for r, _ in bad)
    assert reasons == ["unreadable line", "unreadable line", "unreadable value", "value out of range",
                       "value out of range"], bad
    assert (bad_values / "listings.jsonl").exists(), "the landed files are never modified"
    assert set(statuses) - {"bad_values"} == {b for b in statuses if b.startswith("automarkt-")}, statuses

    listed = subprocess.run([carprice, "batches", "list", "--status", "unfinished", "--data-dir", str(data)],
                            env=env, capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0, listed.stderr
    for name, why in [("points_outside", "plain file name"), ("climbs_out", "plain file name"),
                      ("symlinked_file", "outside its batch folder"), ("symlinked_folder", "is a symlink"),
                      ("bad_manifest_values", "started_at must be an ISO date"), ("wrong_id", "names batch"),
                      ("not_json", "not valid JSON")]:
        assert f"hostile/{name}  unreadable" in listed.stdout, name
        assert why in listed.stdout.split(f"hostile/{name}  unreadable", 1)[1].split("\n")[1], (name, why)
    assert "fifo_file" in listed.stdout and "not a regular file" in run.stdout + run.stderr + listed.stdout
