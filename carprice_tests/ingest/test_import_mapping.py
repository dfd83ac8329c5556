"""File import as pure functions: column maps, constants and units, the rejects headline, and the dry run."""

from __future__ import annotations

import pandas as pd
import pytest

from carprice.cli import main
from carprice.ingest.file_import import (
    FileImportError,
    check_file,
    column_value,
    convert_rows,
    file_type,
    fill_constants,
    import_constants,
    most_rejected,
    parse_column_map,
    parse_constants,
    plan_import,
    read_table,
    rejects_headline,
    row_values,
)
from scrapers.items import CarListing, Reject


def test_fields_are_named_as_the_listing_has_them_or_as_raw_fields():
    assert parse_column_map(["KM=mileage", "HP=power_raw", "Model=model"]) == {
        "mileage_raw": "KM", "power_raw": "HP", "model": "Model"}
    assert parse_column_map(["{Mfg_Year}-{Mfg_Month}=first_registration"]) == {
        "first_registration_raw": "{Mfg_Year}-{Mfg_Month}"}
    with pytest.raises(FileImportError, match="look like column=field, got 'km'"):
        parse_column_map(["km"])
    with pytest.raises(FileImportError, match="unknown field 'mileage_km'; fields: .*mileage, mileage_unit"):
        parse_column_map(["km=mileage_km"])
    with pytest.raises(FileImportError, match="field 'mileage_raw' is mapped twice: from 'KM' and 'miles'"):
        parse_column_map(["KM=mileage", "miles=mileage_raw"])


def test_constants_and_units_are_checked_before_anything_is_read():
    assert parse_constants(["make=Toyota", "region=Noord-Holland"]) == {"make_raw": "Toyota", "region": "Noord-Holland"}
    assert import_constants(["make=Toyota"], currency="eur", mileage_unit="MI", power_unit="hp") == {
        "make_raw": "Toyota", "currency_raw": "EUR", "mileage_unit_raw": "mi", "power_unit_raw": "hp"}
    # A unit given with --set is checked like its own option, and the two may agree.
    assert import_constants(["currency=EUR", "power_unit=ps"], currency="EUR") == {
        "currency_raw": "EUR", "power_unit_raw": "PS"}
    with pytest.raises(FileImportError, match="unknown field 'brand'; fields: "):
        parse_constants(["brand=Toyota"])
    with pytest.raises(FileImportError, match="url identifies each listing: map it from a column"):
        parse_constants(["url=https://dealer.example/"])
    with pytest.raises(FileImportError, match="look like field=value, got 'make'"):
        parse_constants(["make"])
    with pytest.raises(FileImportError, match="field 'make' is set twice: to 'Toyota' and 'Lexus'"):
        parse_constants(["make=Toyota", "make=Lexus"])
    with pytest.raises(FileImportError, match="unknown currency 'Gold': give an ISO 4217 code"):
        import_constants([], currency="Gold")
    with pytest.raises(FileImportError, match="unknown currency 'gold'"):
        import_constants(["currency=gold"])
    with pytest.raises(FileImportError, match="unknown mileage unit 'miles'; use one of km, mi"):
        import_constants([], mileage_unit="miles")
    with pytest.raises(FileImportError, match="unknown power unit 'bhp'; use one of kw, hp, ps"):
        import_constants([], power_unit="bhp")
    with pytest.raises(FileImportError, match="currency is given twice: 'USD' with --set and 'EUR' with --currency"):
        import_constants(["currency=USD"], currency="EUR")


def test_constants_fill_only_what_the_row_does_not_say():
    constants = {"make_raw": "Toyota", "currency_raw": "EUR", "mileage_unit_raw": "km", "power_unit_raw": "hp"}
    assert fill_constants({"make_raw": None, "price_raw": "9500", "mileage_raw": "120000", "power_raw": "90"},
                          constants) == {"make_raw": "Toyota", "price_raw": "9500", "mileage_raw": "120000",
                                         "power_raw": "90", "currency_raw": "EUR", "mileage_unit_raw": "km",
                                         "power_unit_raw": "hp"}
    # The file's own value wins, and so does a unit or currency the value's text names.
    said = fill_constants({"make_raw": "Lexus", "price_raw": "$ 9,500", "mileage_raw": "45,000 miles",
                           "power_raw": "66 kW"}, constants)
    assert said == {"make_raw": "Lexus", "price_raw": "$ 9,500", "mileage_raw": "45,000 miles", "power_raw": "66 kW"}
    assert fill_constants({"power_raw": "1.1e2"}, constants)["power_unit_raw"] == "hp", "scientific, not a unit"


def test_a_template_joins_columns_and_is_empty_when_one_is():
    row = {"Mfg_Year": "2002", "Mfg_Month": "10", "Blank": None}
    assert column_value(row, "{Mfg_Year}-{Mfg_Month}") == "2002-10"
    assert column_value(row, "Mfg_Year") == "2002"
    assert column_value(row, "{Mfg_Year}-{Blank}") is None
    assert column_value(row, "Blank") is None


def test_the_plan_maps_common_names_then_the_persons_map_and_lists_what_it_does_not_read():
    plan = plan_import(["Id", "Model", "Price", "KM", "Mfg_Year", "Mfg_Month", "Airco"],
                       {"mileage_raw": "KM", "first_registration_raw": "{Mfg_Year}-{Mfg_Month}"},
                       {"make_raw": "Toyota"})
    assert plan.columns == {"site_listing_id": "Id", "model": "Model", "price_raw": "Price", "mileage_raw": "KM",
                            "first_registration_raw": "{Mfg_Year}-{Mfg_Month}"}
    assert plan.unmapped == ("Airco",)
    assert "  KM -> mileage" in plan.describe() and "  not read: Airco" in plan.describe()
    assert "  (constant) make = 'Toyota' where the file does not say" in plan.describe()
    # The person's map replaces a default for the same field.
    assert plan_import(["make", "brand", "model", "price"], {"make_raw": "brand"}).columns["make_raw"] == "brand"
    with pytest.raises(FileImportError, match="needs columns for make, model and price .*lacking: make; mapped: "
                                              "Model -> model, Price -> price"):
        plan_import(["Model", "Price"], file_name="cars.csv")
    with pytest.raises(FileImportError, match=r"mapped columns not in cars.csv: \['Mfg_Day'\]"):
        plan_import(["Model", "Price", "Mfg_Year"], {"first_registration_raw": "{Mfg_Year}-{Mfg_Day}"},
                    {"make_raw": "Toyota"}, file_name="cars.csv")


def test_rows_become_listings_in_kw_km_and_euros_or_rejects_with_reasons():
    table = pd.DataFrame({"Model": ["Corolla", "Corolla", "Corolla", "Corolla"],
                          "Price": ["13500", None, "9950", "8000"], "KM": ["46986", "50000", "a lot", "30,000 mi"],
                          "HP": ["90", "110", "110", "  "], "Year": ["2002", "2001", "2000", "1999"],
                          "Month": ["10", "3", "1", None]})
    column_map = parse_column_map(["KM=mileage", "HP=power", "{Year}-{Month}=first_registration"])
    plan = plan_import(list(table.columns), column_map,
                       import_constants(["make=toyota"], currency="EUR", power_unit="hp"))
    items = list(convert_rows(table, plan, "toyota", "/data/cars.csv", "file:csv", "2026-11-28T00:00:00+00:00"))
    first, fourth = items[0], items[3]
    assert isinstance(first, CarListing) and isinstance(fourth, CarListing)
    assert (first.make, first.price, first.mileage_km, first.power_kw) == ("Toyota", 13500.0, 46986.0, 67.1)
    assert (first.model_year, first.first_registration, first.url) == (2002, "2002-10-01", "file:///data/cars.csv#row=1")
    # Miles named in the value are read as miles; a blank power is no power; no month is no first registration.
    assert (fourth.mileage_km, fourth.power_kw, fourth.first_registration, fourth.model_year) == (48280.3, None, None,
                                                                                                  1999)
    assert [(r.reason, r.detail[:9]) for r in items if isinstance(r, Reject)] == [
        ("missing price", "{'Model':"), ("unreadable mileage", "'a lot'; ")]
    assert row_values({"Model": "x", "Price": "1", "KM": "", "HP": "1", "Year": "1", "Month": "1"},
                      plan)["mileage_raw"] is None, "blank text is no value"


def test_the_headline_names_the_top_reasons_with_counts():
    reasons = {"unreadable mileage": 180, "missing price": 1200}
    assert rejects_headline(1436, reasons) == \
        "1,380 of 1,436 rows rejected: missing price 1,200, unreadable mileage 180"
    assert rejects_headline(1436, {}) == "all 1,436 rows read as listings"
    many = {"a": 5, "b": 4, "c": 3, "d": 2, "e": 1}
    assert rejects_headline(20, many) == "15 of 20 rows rejected: a 5, b 4, c 3, 2 other reasons 3"
    assert most_rejected(1436, reasons) and not most_rejected(10, {"a": 5})


def test_compressed_csv_is_read_by_its_inner_type(tmp_path):
    assert file_type(tmp_path / "ToyotaCorolla.csv.gz") == "csv"
    assert file_type(tmp_path / "export.jsonl.xz") == "jsonl"
    assert file_type(tmp_path / "export.parquet") == "parquet"
    assert file_type(tmp_path / "archive.tar.gz") == "gz"
    pd.DataFrame({"Model": ["Corolla"], "Price": ["9500"]}).to_csv(tmp_path / "cars.csv.gz", index=False)
    assert read_table(tmp_path / "cars.csv.gz").to_dict("records") == [{"Model": "Corolla", "Price": "9500"}]
    (tmp_path / "cut.csv.gz").write_bytes((tmp_path / "cars.csv.gz").read_bytes()[:20])
    with pytest.raises(FileImportError, match="cannot read"):
        read_table(tmp_path / "cut.csv.gz")
    (tmp_path / "data.xlsx").write_text("x")
    with pytest.raises(FileImportError, match="unknown file type '.xlsx'"):
        read_table(tmp_path / "data.xlsx")
    (tmp_path / "bad.parquet").write_text("not parquet")
    with pytest.raises(FileImportError, match="cannot read"):
        read_table(tmp_path / "bad.parquet")


def cars_csv(tmp_path, n: int = 12):
    """A small export whose every third row has no price and whose fifth row an unreadable mileage."""
    rows = [{"Model": "Corolla 1.6", "Price": None if i % 3 == 0 else str(9000 + i), "KM": "a lot" if i == 4 else
             str(10_000 * i), "HP": "110", "Mfg_Year": "2001", "Airco": "1"} for i in range(n)]
    pd.DataFrame(rows).to_csv(tmp_path / "cars.csv", index=False)
    return tmp_path / "cars.csv"


def test_a_dry_run_shows_mapping_tally_and_first_rejects_and_writes_nothing(tmp_path, capsys):
    path = cars_csv(tmp_path)
    before = path.read_bytes()
    args = ["import", str(path), "--source", "toyota", "--data-dir", str(tmp_path / "data"), "--check",
            "--map", "KM=mileage", "HP=power", "--map", "Mfg_Year=model_year", "--set", "make=Toyota",
            "--currency", "EUR", "--power-unit", "hp"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "cars.csv: 12 rows (a dry run: nothing was written)" in out
    assert "  KM -> mileage\n" in out and "  Mfg_Year -> model_year\n" in out and "  not read: Airco\n" in out
    assert "  (constant) power_unit = 'hp' where the file does not say" in out
    assert "would land 7 listings and 5 rejects\n  5 of 12 rows rejected: missing price 4, unreadable mileage 1\n" \
        in out
    assert "first 5 rejects:\n  file://" in out and "#row=5: unreadable mileage\n    'a lot'; {'Model': " in out
    assert not (tmp_path / "data").exists(), "no landing zone, warehouse or Dagster home"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cars.csv"] and path.read_bytes() == before
    check = check_file(path, "toyota", parse_column_map(["KM=mileage"]), {"make_raw": "Toyota"})
    assert (check.rows, check.accepted, dict(check.reasons)) == (12, 0, {"missing price": 4,
                                                                         "price without currency": 8})


@pytest.mark.parametrize(("options", "message"), [
    (["--set", "brand=Toyota"], "unknown field 'brand'; fields: "),
    (["--set", "Toyota"], "constants look like field=value, got 'Toyota'"),
    (["--map", "KM=odometer"], "unknown field 'odometer'"),
    (["--map", "Kilometres=mileage"], r"mapped columns not in cars.csv: ['Kilometres']"),
    (["--currency", "EURO"], "unknown currency 'EURO': give an ISO 4217 code"),
    (["--mileage-unit", "miles"], "unknown mileage unit 'miles'; use one of km, mi"),
    (["--power-unit", "bhp"], "unknown power unit 'bhp'; use one of kw, hp, ps"),
    (["--set", "currency=USD", "--currency", "EUR"], "currency is given twice: 'USD' with --set and 'EUR' with"),
    (["--source", "../up"], "a source is a plain name"),
])
def test_bad_options_are_one_clear_line_and_write_nothing(tmp_path, capsys, options, message):
    path = cars_csv(tmp_path)
    args = ["import", str(path), "--source", "toyota", "--data-dir", str(tmp_path / "data"), "--set", "make=Toyota",
            *options]
    for check in ([], ["--check"]):
        assert main(args + check) == 2
        err = capsys.readouterr().err
        assert err.startswith("carprice: error: ") and message in err and err.count("\n") == 1, err
    assert not (tmp_path / "data").exists()
