"""Ingesting hand-edited or crafted batch files: bad values become rejects with a reason, never a failed batch."""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path

import duckdb
import pytest

from carprice.config import ValidationConfig
from carprice.ingest.landing import Batch, BatchError, batch_file_bytes, read_batch, scan_landing
from carprice.ingest.store import RAW_COLUMNS, ingest_batch
from carprice.validation.admission import validate_batch
from carprice.validation.checks import CHECK_COLUMNS
from carprice.warehouse import Warehouse
from scrapers.batch_writer import BatchWriter
from scrapers.items import CarListing, Reject
from scrapers.pipelines import normalize_listing

SCRAPED_AT = "2026-01-15T08:00:00+00:00"


def landed_batch(landing: Path) -> Batch:
    """A batch landed by the real BatchWriter: two good listings and one spider reject."""
    writer = BatchWriter(landing, "src")
    for i in range(2):
        item = CarListing(url=f"https://cars.example/{i}", source="src", scraped_at=SCRAPED_AT, page_format="json-ld",
                          make_raw="VW", model="Golf", price_raw="€ 12.500", currency_raw="EUR", doors_raw="5",
                          mileage_raw="45,000", mileage_unit_raw="KMT", model_year_raw="2019")
        writer.add_listing(asdict(normalize_listing(item)))
    writer.add_reject(asdict(Reject(url="https://cars.example/gone", source="src", scraped_at=SCRAPED_AT,
                                    reason="HTTP 404")))
    return read_batch(writer.finish(finish_reason="finished"))


def append(path: Path, line: bytes) -> None:
    with open(path, "ab") as fh:
        fh.write(line + b"\n")


def rejects_of(wh: Warehouse, batch_id: str) -> list[tuple[str, str, str]]:
    return [tuple(r) for r in wh.query("SELECT url, reason, detail FROM raw_rejects WHERE batch_id = ? "
                                       "ORDER BY reason, detail", [batch_id]).itertuples(index=False)]


@pytest.mark.parametrize(("line", "reason", "detail"), [
    (b'{"url": "https://cars.example/a", "doors": 1e30}', "value out of range", "doors: 1e+30"),
    (b'{"url": "https://cars.example/a", "doors": 123456789012345678901234567890}', "value out of range",
     "doors: 123456789012345678901234567890"),
    (b'{"url": "https://cars.example/a", "model_year": -9223372036854775809}', "value out of range",
     "model_year: -9223372036854775809"),
    (b'{"url": "https://cars.example/a", "price": 1e400}', "value out of range", "price: Infinity"),
    (b'{"url": "https://cars.example/a", "price": "abc"}', "unreadable value", 'price: "abc"'),
    (b'{"url": "https://cars.example/a", "mileage_km": [1]}', "unreadable value", "mileage_km: [1]"),
    (b'{"url": "https://cars.example/a", "doors": 4.5}', "unreadable value", "doors: 4.5"),
    (b'{"url": "https://cars.example/a", "doors": true}', "unreadable value", "doors: true"),
])
def test_a_value_that_does_not_fit_its_column_is_a_reject(tmp_path, line, reason, detail):
    batch = landed_batch(tmp_path / "landing")
    append(batch.listings_file, line)
    wh = Warehouse(tmp_path / "wh.duckdb")
    assert ingest_batch(wh, batch) == {"listings": 2, "rejects": 2}
    assert rejects_of(wh, batch.batch_id) == [
        ("https://cars.example/gone", "HTTP 404", ""),
        ("https://cars.example/a", reason, f"{detail} (listings.jsonl line 3)")]
    assert wh.query("SELECT count(*) AS n FROM raw_listings WHERE url = 'https://cars.example/a'").iloc[0]["n"] == 0


@pytest.mark.parametrize(("line", "detail"), [
    (b"not json at all", "listings.jsonl line 3: Expecting value: line 1 column 1 (char 0): 'not json at all'"),
    (b'["an", "array"]', "listings.jsonl line 3: not a JSON object: '[\"an\", \"array\"]'"),
    (b'{"url": "x", "price": NaN}', "listings.jsonl line 3: NaN is not JSON: "),
    (b'{"url": "\xff\xfe"}', "listings.jsonl line 3: 'utf-8' codec can't decode byte 0xff"),
    (b"[" * 100_000, "listings.jsonl line 3: nested too deeply"),
])
def test_a_line_that_is_not_a_json_object_is_a_reject(tmp_path, line, detail):
    batch = landed_batch(tmp_path / "landing")
    append(batch.listings_file, line)
    wh = Warehouse(tmp_path / "wh.duckdb")
    assert ingest_batch(wh, batch) == {"listings": 2, "rejects": 2}
    (_, reason, got), = [r for r in rejects_of(wh, batch.batch_id) if r[1] != "HTTP 404"]
    assert reason == "unreadable line" and got.startswith(detail) and len(got) < 400, got


def test_long_raw_values_are_cut_in_the_detail(tmp_path):
    batch = landed_batch(tmp_path / "landing")
    append(batch.listings_file, json.dumps({"url": "https://cars.example/a", "doors": int("9" * 400),
                                            "price": "x" * 100_000}).encode())
    wh = Warehouse(tmp_path / "wh.duckdb")
    assert ingest_batch(wh, batch) == {"listings": 2, "rejects": 2}
    (_, reason, detail), = [r for r in rejects_of(wh, batch.batch_id) if r[1] != "HTTP 404"]
    assert reason == "value out of range" and detail.startswith("doors: 9999") and "(400 chars)" in detail
    assert len(detail) < 300


def test_good_rows_land_beside_rejects_and_the_rejects_file_is_read_as_tolerantly(tmp_path):
    batch = landed_batch(tmp_path / "landing")
    append(batch.listings_file, b"")  # blank lines are no rows at all
    append(batch.listings_file, b'{"url": "https://cars.example/3", "doors": "5", "price": 9000}')
    append(batch.listings_file, json.dumps({"url": "https://cars.example/4", "make": 7, "model": {"a": 1},
                                            "doors": 3.0, "price": 9000, "extra": "ignored"}).encode())
    append(batch.rejects_file, b"{broken")
    append(batch.rejects_file, b'{"url": 5, "source": "src", "reason": ["x"], "scraped_at": null}')
    wh = Warehouse(tmp_path / "wh.duckdb")
    assert ingest_batch(wh, batch) == {"listings": 3, "rejects": 4}
    assert ingest_batch(wh, batch) == {"listings": 3, "rejects": 4}, "ingesting again replaces, never adds"
    landed = wh.query("SELECT make, model, doors, price FROM raw_listings WHERE url = 'https://cars.example/4'")
    # Text columns take any JSON value as its JSON text; whole-valued numbers fit integer columns.
    assert landed.iloc[0].tolist() == ["7", '{"a": 1}', 3, 9000.0]
    assert sorted(rejects_of(wh, batch.batch_id), key=str) == sorted([
        ("https://cars.example/gone", "HTTP 404", ""),
        ("https://cars.example/3", "unreadable value", 'doors: "5" (listings.jsonl line 4)'),
        (None, "unreadable line", "rejects.jsonl line 2: Expecting property name enclosed in double quotes: "
                                  "line 1 column 2 (char 1): '{broken'"),
        ("5", '["x"]', None),  # no detail key: null, as any missing key
    ], key=str)
    assert wh.query("SELECT source FROM raw_rejects WHERE url IS NULL").iloc[0]["source"] == "src"


# --- files outside the batch folder --------------------------------------------------------------


@pytest.fixture
def secret(tmp_path) -> Path:
    """A file outside the landing zone that reads as a perfectly good listings file."""
    path = tmp_path / "secret.jsonl"
    path.write_text(json.dumps({"url": "file:///secret", "title": "do not ingest"}) + "\n")
    return path


@pytest.mark.parametrize("name", ["listings.jsonl", "rejects.jsonl", "manifest.json"])
def test_a_batch_file_that_links_outside_its_folder_is_refused(tmp_path, secret, name):
    batch = landed_batch(tmp_path / "landing")
    if name == "manifest.json":
        secret.write_text((batch.path / name).read_text())
    (batch.path / name).unlink()
    (batch.path / name).symlink_to(secret)
    with pytest.raises(BatchError, match=f"{name} resolves to {secret}, outside its batch folder"):
        read_batch(batch.path)
    batches, broken = scan_landing(tmp_path / "landing")
    assert batches == [] and "outside its batch folder" in broken[str(batch.path)]


def test_ingest_reads_no_file_outside_the_batch_folder(tmp_path, secret):
    batch = landed_batch(tmp_path / "landing")
    wh = Warehouse(tmp_path / "wh.duckdb")
    before = ingest_batch(wh, batch)
    # Whatever the manifest said when the batch was read: the file is checked again when it is read.
    batch.listings_file.unlink()
    batch.listings_file.symlink_to(secret)
    with pytest.raises(BatchError, match="outside its batch folder"):
        ingest_batch(wh, batch)
    moved = replace(batch, manifest={**batch.manifest, "files": {"listings": f"../../../{secret.name}"}})
    with pytest.raises(BatchError, match="outside its batch folder"):
        ingest_batch(wh, moved)
    with pytest.raises(BatchError, match="outside its batch folder"):
        batch_file_bytes(batch, secret)
    assert wh.query("SELECT count(*) AS n FROM raw_listings WHERE url = 'file:///secret'").iloc[0]["n"] == 0
    assert wh.count("raw_listings") == before["listings"] and wh.count("raw_rejects") == before["rejects"]
    assert wh.count("batches") == 1, "the previous ingest stands"


def test_a_batch_file_that_is_not_a_regular_file_is_refused(tmp_path):
    batch = landed_batch(tmp_path / "landing")
    batch.rejects_file.unlink()
    batch.rejects_file.mkdir()
    with pytest.raises(BatchError, match="rejects.jsonl is not a regular file"):
        ingest_batch(Warehouse(tmp_path / "wh.duckdb"), batch)


def test_a_warehouse_from_before_properties_ingests_and_validates_old_and_new_batches(tmp_path):
    path = tmp_path / "wh.duckdb"
    old_columns = {k: v for k, v in RAW_COLUMNS.items() if k != "properties"}
    with duckdb.connect(str(path)) as con:  # raw_listings as an earlier version created it, with a row
        con.execute(f"CREATE TABLE raw_listings ({', '.join(f'{k} {v}' for k, v in old_columns.items())})")
        con.execute("INSERT INTO raw_listings (batch_id, ingested_at, url, source) VALUES ('old', now(), 'u', 'src')")
    wh = Warehouse(path)
    # A batch landed by the earlier spider (no properties key) and one by this spider (with the map).
    old_batch = landed_batch(tmp_path / "landing-old")
    rows = [json.loads(line) for line in old_batch.listings_file.read_bytes().splitlines()]
    old_batch.listings_file.write_text("".join(json.dumps({k: v for k, v in r.items() if k != "properties"}) + "\n"
                                               for r in rows))
    writer = BatchWriter(tmp_path / "landing-new", "src")
    for i in range(2):
        item = CarListing(url=f"https://cars.example/n{i}", source="src", scraped_at=SCRAPED_AT, page_format="json-ld",
                          make_raw="Ford", model="F-150", price_raw="18500", currency_raw="USD", model_year_raw="2014",
                          properties=json.dumps({"title_status": "clean", "drive": "4wd"}))
        writer.add_listing(asdict(normalize_listing(item)))
    new_batch = read_batch(writer.finish(finish_reason="finished"))
    for batch in (old_batch, new_batch):
        assert ingest_batch(wh, batch)["listings"] == 2
        verdict = validate_batch(wh, batch, ValidationConfig())
        assert next(o for o in verdict.outcomes if o.name == CHECK_COLUMNS).passed
    assert verdict.profile["properties"] == {"title_status": 1.0, "drive": 1.0}
    stored = wh.query("SELECT batch_id, properties FROM raw_listings ORDER BY batch_id, url")
    assert stored["properties"].isna().sum() == 3  # the old row and the old batch's two
