"""Real listings through the whole path: dmba's 1,436 Toyota Corollas imported with `carprice import`."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

# Downloads a real data set and runs the CLI end to end: its own tier, inside the integration one.
pytestmark = [pytest.mark.realdata, pytest.mark.integration]

ROWS = 1436
# The data set's columns as listing fields. It has no listing date: its ages (Age_08_04) are counted to
# August 2004, so that is every listing's date, and the first registration is the manufacturing month.
# Unmapped: Age_08_04 (the age, computed again from these), Automatic (0/1, not a transmission word), CC, the
# equipment flags and the rest, which have no listing field.
IMPORT_OPTIONS = [
    "--map", "Price=price", "KM=mileage", "HP=power", "Fuel_Type=fuel", "Model=model", "Mfg_Year=model_year",
    "{Mfg_Year}-{Mfg_Month}=first_registration", "Doors=doors", "Color=color", "Id=site_listing_id",
    "--set", "make=Toyota", "listed_at=2004-08-01", "--currency", "EUR", "--mileage-unit", "km", "--power-unit", "hp",
]


def carprice(*args: str, home: Path) -> subprocess.CompletedProcess:
    """Run the installed ``carprice`` command as a person would, with its own Dagster home."""
    return subprocess.run([str(Path(sys.executable).with_name("carprice")), *args],
                          env={**os.environ, "DAGSTER_HOME": str(home)}, capture_output=True, text=True, timeout=900)


def test_toyota_corolla_is_imported_admitted_and_a_first_model_judged(toyota_corolla_csv, tmp_path):
    data, home = tmp_path / "data", tmp_path / "home"
    command = ["import", str(toyota_corolla_csv), "--source", "toyota_corolla", "--data-dir", str(data),
               *IMPORT_OPTIONS]

    check = carprice(*command, "--check", home=home)
    assert check.returncode == 0, check.stderr[-3000:]
    assert f"would land {ROWS:,} listings and 0 rejects" in check.stdout, check.stdout
    assert "  {Mfg_Year}-{Mfg_Month} -> first_registration\n" in check.stdout
    assert not data.exists(), "a dry run writes nothing"

    imported = carprice(*command, home=home)
    assert f": {ROWS:,} listings, 0 rejects\n  all {ROWS:,} rows read as listings\n" in imported.stdout, \
        imported.stdout + imported.stderr[-3000:]
    batch_id = re.search(r"^landed (\S+):", imported.stdout, re.M).group(1)
    # A new source: its first batch is held for onboarding with its profile, and a reviewer admits it.
    assert imported.returncode == 3 and "source_reference_reviewed: first batch of a new source" in imported.stdout, \
        imported.stdout[-3000:] + imported.stderr[-3000:]
    assert "never published: body, region, seller_type, transmission" in imported.stdout, imported.stdout
    readmitted = carprice("batches", "readmit", batch_id, "--data-dir", str(data), "--by", "test", "--note",
                          "dmba ToyotaCorolla: real listings; the file has no transmission, body, seller or "
                          "region columns", home=home)
    assert readmitted.returncode == 0, readmitted.stdout[-3000:] + readmitted.stderr[-3000:]
    # Every listing has the same date and one import has one first-seen time: a random split by car.
    assert "listing dates could not split the data" in readmitted.stdout, readmitted.stdout[-3000:]

    with duckdb.connect(str(data / "warehouse-snapshot.duckdb"), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM raw_listings WHERE batch_id = ?", [batch_id]).fetchone()[0] == ROWS
        judged = con.execute("SELECT challenger, n_eval, scores, promoted, reason FROM model_evaluations").fetchall()
    assert len(judged) == 1, "one first model, trained on the import and judged"
    challenger, n_eval, scores, promoted, reason = judged[0]
    scores = json.loads(scores)
    figures = {"challenger": scores["challenger"]["overall"]} | {
        name: b["overall"] for name, b in scores.get("baselines", {}).items()}
    print(f"\n{challenger} judged on {n_eval} listings, promoted={promoted}: {reason}")
    for name, m in figures.items():
        print(f"  {name:<24} MAE {m['mae']:,.0f} EUR  median APE {100 * m['median_ape']:.1f}%  R² {m['r2']:.3f}")
    assert n_eval > 250, "a fifth of the cars, held out whole"
    # A first model is promoted only when it beats every baseline, the bare LightGBM on the same features included.
    assert set(figures) == {"challenger", "median_make_model_year", "linear_ridge", "bare_lightgbm"}
    assert promoted and all(figures["challenger"]["mae"] < m["mae"] for m in figures.values()
                            if m is not figures["challenger"]), reason
