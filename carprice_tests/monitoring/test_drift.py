"""Batch monitoring: real Evidently reports on synthetic listings, and the retraining rule on hand-built summaries."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from carprice.config import MonitoringConfig
from carprice.monitoring.drift import (
    MONITORED,
    MONITORED_CATEGORICAL,
    MONITORED_NUMERIC,
    MonitoringSummary,
    Trigger,
    monitor_batch,
    retraining_triggers,
)

CFG = MonitoringConfig()
MAKES = ["volkswagen", "bmw", "audi", "opel", "ford", "toyota", "skoda", "mercedes-benz"]
BODIES = ["hatchback", "suv", "sedan", "estate", "van"]
# The columns of the warehouse's monitoring_reports table that a summary fills.
ROW_KEYS = {"n_reference", "n_current", "drifted_columns", "n_columns", "drift_share", "column_scores",
            "prediction_drift_score", "prediction_drifted", "target_drift_score", "mae", "mape",
            "reference_mae", "reference_mape", "decay", "triggers", "report_path", "n_fresh",
            "quality_report_path", "segment_errors"}


def listings(n: int, seed: int, *, shifted: bool = False, noise: float = 0.08,
             prediction_factor: float = 1.0) -> pd.DataFrame:
    """Listings that look like feature rows of the warehouse, priced by the champion with lognormal error.

    ``shifted`` moves the market: other makes and bodies dominate and cars run more and stronger.
    """
    rng = np.random.default_rng(seed)
    make_p = ([0.05, 0.05, 0.05, 0.05, 0.05, 0.05, 0.35, 0.35] if shifted
              else [0.25, 0.15, 0.12, 0.12, 0.1, 0.1, 0.08, 0.08])
    body_p = [0.05, 0.7, 0.1, 0.1, 0.05] if shifted else [0.35, 0.2, 0.2, 0.15, 0.1]
    model_year = rng.integers(2005, 2024, n)
    age = np.clip(2024.5 - model_year + rng.uniform(-0.5, 0.5, n), 0.05, None)
    km_per_year = rng.lognormal(np.log(22_000 if shifted else 14_000), 0.35, n)
    power = rng.normal(135 if shifted else 100, 30, n).clip(40, 400)
    power[rng.random(n) < 0.05] = np.nan  # some sellers leave power out
    price = np.clip(38_000 * np.exp(-0.13 * age) * (power / 100) ** 0.5 * rng.lognormal(0, 0.25, n), 2_000, 60_000)
    price = np.where(np.isnan(price), 9_000, price).round()
    return pd.DataFrame({
        "url": [f"http://automarkt.local/listing/{seed}-{i}" for i in range(n)],
        "listed_at": pd.Timestamp("2024-06-01") + pd.to_timedelta(rng.integers(0, 7, n), unit="D"),
        "make": rng.choice(MAKES, n, p=make_p),
        "fuel": rng.choice(["petrol", "diesel", "electric", "hybrid"], n, p=[0.45, 0.35, 0.1, 0.1]),
        "transmission": rng.choice(["manual", "automatic"], n, p=[0.6, 0.4]),
        "body": rng.choice(BODIES, n, p=body_p),
        "seller_type": rng.choice(["dealer", "private"], n),
        "region": rng.choice(["north", "south", "east", "west", "berlin"], n),
        "condition": rng.choice(["used", "like new", "needs work", None], n, p=[0.7, 0.15, 0.1, 0.05]),
        "model_year": model_year,
        "age_years": age,
        "mileage_km": age * km_per_year,
        "km_per_year": km_per_year,
        "power_kw": power,
        "market_price": price,
        "predicted_price": price * rng.lognormal(0, noise, n) * prediction_factor,
    })


def true_mape(frame: pd.DataFrame) -> float:
    """MAPE as a fraction, computed directly (the number Evidently's result must be normalised to)."""
    return float(np.mean(np.abs(frame["predicted_price"] - frame["market_price"]) / frame["market_price"]))


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    return listings(3000, seed=1)


@pytest.fixture(scope="module")
def stable(reference, tmp_path_factory):
    """A batch from the same market as the reference, with nullable dtypes as DuckDB hands them over."""
    current = listings(1500, seed=2)
    current["model_year"] = current["model_year"].astype("Int64")
    for column in MONITORED_CATEGORICAL:
        current[column] = current[column].astype("string")
    html_path = tmp_path_factory.mktemp("reports") / "monitoring" / "batch-1.html"
    summary = monitor_batch(reference, current, reference_quality={"mae": 1_000.0, "mape": true_mape(reference)},
                            cfg=CFG, html_path=html_path, title="batch-1 vs champion v3")
    return current, summary, html_path


def test_same_market_drifts_little_and_requests_nothing(stable):
    _current, summary, _ = stable
    assert summary.n_columns == len(MONITORED) == 12
    assert summary.drifted_columns <= 1
    assert summary.prediction_drift_score < CFG.prediction_drift_threshold and not summary.prediction_drifted
    assert summary.target_drift_score < CFG.prediction_drift_threshold
    assert summary.triggers == []
    for column in MONITORED_NUMERIC:
        assert summary.column_scores[column]["method"] == "wasserstein"
    for column in MONITORED_CATEGORICAL:
        assert summary.column_scores[column]["method"] == "jensenshannon"
    assert all(s["threshold"] == CFG.column_drift_threshold for s in summary.column_scores.values())


def test_quality_is_evidently_mae_and_mape_as_a_fraction(stable):
    current, summary, _ = stable
    assert summary.n_current == 1500 and summary.n_reference == 3000
    assert summary.mape == pytest.approx(true_mape(current), rel=1e-6)
    expected_mae = float(np.mean(np.abs(current["predicted_price"] - current["market_price"])))
    assert summary.mae == pytest.approx(expected_mae, rel=1e-6)
    assert summary.reference_mae == 1_000.0
    assert summary.decay == pytest.approx(summary.mape / summary.reference_mape - 1)
    assert abs(summary.decay) < CFG.decay_margin


def test_report_is_one_self_contained_html_file(stable):
    _, summary, html_path = stable
    assert summary.report_path == html_path and html_path.is_file()
    page = html_path.read_text(encoding="utf-8")
    assert len(page) > 100_000
    assert "<title>batch-1 vs champion v3</title>" in page
    assert "<script src=" not in page  # scripts inlined: the file opens without network
    assert not list(html_path.parent.glob("*.partial"))


def test_to_row_is_one_json_able_warehouse_row(stable):
    _, summary, html_path = stable
    row = summary.to_row()
    assert set(row) == ROW_KEYS
    json.dumps(row, allow_nan=False)
    assert json.loads(row["column_scores"])["make"]["method"] == "jensenshannon"
    assert json.loads(row["triggers"]) == []
    assert row["report_path"] == row["quality_report_path"] == str(html_path)
    assert row["n_fresh"] == row["n_current"]


def test_shifted_market_requests_retraining_for_drift(reference):
    current = listings(1500, seed=3, shifted=True)
    summary = monitor_batch(reference, current, reference_quality={}, cfg=CFG)
    drifted = {c for c, s in summary.column_scores.items() if s["drifted"]}
    assert {"make", "body", "mileage_km", "km_per_year", "power_kw"} <= drifted
    assert not {"fuel", "region", "transmission"} & drifted
    assert summary.drift_share == summary.drifted_columns / 12 >= CFG.drift_share_threshold
    (drift,) = [t for t in summary.triggers if t.kind == "drift"]
    assert f"{summary.drifted_columns} of 12 feature columns drifted" in drift.reason
    assert "≥ 30%" in drift.reason and "column threshold 0.1" in drift.reason
    for column in ("make", "body", "mileage_km"):
        assert column in drift.reason
    assert "region" not in drift.reason
    assert summary.report_path is None


def test_inflated_predictions_request_retraining_for_prediction_drift(reference):
    current = listings(1500, seed=4, prediction_factor=1.5)
    summary = monitor_batch(reference, current, reference_quality={}, cfg=CFG)
    assert summary.prediction_drifted and summary.prediction_drift_score >= CFG.prediction_drift_threshold
    assert summary.target_drift_score < CFG.prediction_drift_threshold  # asking prices did not move
    assert summary.drifted_columns <= 1
    assert [t.kind for t in summary.triggers] == ["prediction_drift"]
    assert f"{summary.prediction_drift_score:.3f}" in summary.triggers[0].reason
    assert summary.decay is None  # no reference quality: decay is not judged


def test_worse_errors_request_retraining_for_decay(reference):
    current = listings(800, seed=5, noise=0.3)
    summary = monitor_batch(reference, current, reference_quality={"mae": 700.0, "mape": 0.065}, cfg=CFG)
    assert summary.mape > 0.065 * (1 + CFG.decay_margin)
    (decay,) = [t for t in summary.triggers if t.kind == "decay"]
    assert f"{summary.mape:.1%}" in decay.reason and "6.5%" in decay.reason
    assert "800 fresh listings" in decay.reason and "allowed margin 20%" in decay.reason
    assert "vs 700 EUR" in decay.reason


def test_few_fresh_rows_report_no_quality_and_no_decay(reference):
    current = listings(CFG.min_fresh_rows - 1, seed=6, noise=0.5)
    summary = monitor_batch(reference, current, reference_quality={"mae": 700.0, "mape": 0.065}, cfg=CFG)
    assert summary.n_current == CFG.min_fresh_rows - 1
    assert summary.mae is None and summary.mape is None and summary.decay is None
    assert summary.reference_mape == 0.065
    assert "decay" not in [t.kind for t in summary.triggers]
    json.dumps(summary.to_row(), allow_nan=False)


def test_empty_column_is_skipped_and_thresholds_come_from_config(reference):
    cfg = replace(CFG, column_drift_threshold=0.2, prediction_drift_threshold=0.25)
    current = listings(300, seed=7)
    current["power_kw"] = np.nan  # a source that never states power
    summary = monitor_batch(reference, current, reference_quality={}, cfg=cfg)
    assert summary.n_columns == 11
    assert summary.column_scores["power_kw"] == {"method": "wasserstein", "score": None, "threshold": 0.2,
                                                 "drifted": False, "skipped": "no values in the current batch"}
    assert summary.column_scores["make"]["threshold"] == 0.2


def test_empty_batch_is_refused(reference):
    with pytest.raises(ValueError, match="no rows"):
        monitor_batch(reference, reference.iloc[:0], reference_quality={}, cfg=CFG)


def test_missing_column_is_named(reference):
    with pytest.raises(ValueError, match="current frame lacks column.*predicted_price"):
        monitor_batch(reference, listings(100, seed=8).drop(columns="predicted_price"),
                      reference_quality={}, cfg=CFG)


def summary(**changes) -> MonitoringSummary:
    """A quiet summary of a 1,000-row batch, with ``changes`` applied."""
    scores = {c: {"method": "wasserstein" if c in MONITORED_NUMERIC else "jensenshannon", "score": 0.02,
                  "threshold": 0.1, "drifted": False} for c in MONITORED}
    base = MonitoringSummary(
        n_reference=5000, n_current=1000, drifted_columns=0, n_columns=12, drift_share=0.0, column_scores=scores,
        prediction_drift_score=0.03, prediction_drifted=False, target_drift_score=0.02, mae=1650.0, mape=0.11,
        reference_mae=1600.0, reference_mape=0.11, decay=0.0, n_fresh=1000, triggers=[], report_path=None)
    return replace(base, **changes)


def drifted_summary(columns: list[str], n_columns: int = 12) -> MonitoringSummary:
    """A summary where exactly ``columns`` drifted."""
    s = summary(n_columns=n_columns, drifted_columns=len(columns), drift_share=len(columns) / n_columns)
    for column in columns:
        s.column_scores[column] = {**s.column_scores[column], "score": 0.25, "drifted": True}
    return s


def kinds(s: MonitoringSummary, cfg: MonitoringConfig = CFG) -> list[str]:
    return [t.kind for t in retraining_triggers(s, cfg)]


def test_quiet_summary_triggers_nothing():
    assert retraining_triggers(summary(), CFG) == []


def test_drift_share_at_threshold_triggers_and_just_below_does_not():
    cfg = replace(CFG, drift_share_threshold=0.25)
    assert kinds(drifted_summary(["make", "body", "fuel"]), cfg) == ["drift"]  # 3 / 12 = 25 %
    assert kinds(drifted_summary(["make", "body"]), cfg) == []
    assert kinds(drifted_summary(["make", "body", "fuel"], n_columns=10)) == ["drift"]  # 30 % ≥ default 30 %
    (trigger,) = retraining_triggers(drifted_summary(["make", "body", "mileage_km"]), cfg)
    assert trigger == Trigger("drift", "3 of 12 feature columns drifted (25% ≥ 25%; column threshold 0.1): "
                                       "mileage_km (wasserstein 0.250), make (jensenshannon 0.250), "
                                       "body (jensenshannon 0.250)")


def test_no_judged_columns_is_no_drift():
    nothing_judged = summary(n_columns=0, drifted_columns=0, drift_share=0.0)
    assert kinds(nothing_judged, replace(CFG, drift_share_threshold=0.0)) == []


def test_prediction_drift_at_threshold_triggers():
    assert kinds(summary(prediction_drift_score=0.1, prediction_drifted=True)) == ["prediction_drift"]
    assert kinds(summary(prediction_drift_score=0.0999)) == []


def test_decay_only_strictly_above_the_margin():
    at_margin = 0.11 * (1 + CFG.decay_margin)
    assert kinds(summary(mape=at_margin)) == []
    assert kinds(summary(mape=at_margin + 1e-6)) == ["decay"]
    (trigger,) = retraining_triggers(summary(mape=0.2, mae=2900.0), CFG)
    assert trigger.reason == ("champion MAPE on 1000 fresh listings is 20.0%, 82% above its evaluation MAPE of 11.0% "
                              "(allowed margin 20%, i.e. up to 13.2%); MAE 2,900 EUR vs 1,600 EUR")


def test_decay_is_not_judged_without_enough_rows_or_a_reference():
    assert kinds(summary(mape=0.5, n_fresh=CFG.min_fresh_rows)) == ["decay"]
    assert kinds(summary(mape=0.5, n_fresh=CFG.min_fresh_rows - 1)) == []
    assert kinds(summary(mape=0.5, reference_mape=None)) == []
    assert kinds(summary(mape=None, mae=None, n_fresh=10)) == []


def test_every_rule_can_fire_together():
    s = drifted_summary(["make", "body", "region", "mileage_km"])
    s = replace(s, prediction_drift_score=0.4, prediction_drifted=True, mape=0.3)
    assert kinds(s) == ["drift", "prediction_drift", "decay"]


def test_quality_is_judged_on_the_fresh_rows_only(reference, tmp_path):
    """Drift compares the whole batch; quality only the listings the champion never saw, in a second report."""
    seen = listings(1200, seed=5)
    new = listings(300, seed=6, prediction_factor=0.7)  # the market moved: the champion prices new cars 30% low
    current = pd.concat([seen, new], ignore_index=True)
    fresh = pd.Series([False] * len(seen) + [True] * len(new))
    summary = monitor_batch(reference, current, reference_quality={"mape": true_mape(reference)}, cfg=CFG,
                            html_path=tmp_path / "drift.html", quality_html_path=tmp_path / "quality.html",
                            title="b", fresh=fresh)
    assert summary.n_current == 1500 and summary.n_fresh == 300
    assert summary.mape == pytest.approx(np.mean(np.abs(new["predicted_price"] - new["market_price"])
                                                 / new["market_price"]), rel=1e-6)
    assert [t.kind for t in summary.triggers] == ["decay"]
    assert "on 300 fresh listings" in summary.triggers[0].reason
    assert summary.report_path.stat().st_size > 0 and summary.quality_report_path.stat().st_size > 0
    # The quality report says what it measures against the model's own evaluation, and by segment (fresh rows only).
    bodies = [s for s in summary.segment_errors if s["column"] == "body"]
    assert bodies and sum(s["n"] for s in bodies) <= 300 and all(s["n"] >= CFG.min_segment_rows for s in bodies)
    assert all(s["vs_model"] == pytest.approx(s["mape"] / true_mape(reference) - 1) for s in bodies)
    page = summary.quality_report_path.read_text()
    assert "The champion on 300 listings it never saw" in page and "Error by segment" in page
    assert "Error by segment" not in summary.report_path.read_text()
    with pytest.raises(ValueError, match="fresh mask has 3 values"):
        monitor_batch(reference, current, reference_quality={}, cfg=CFG, fresh=pd.Series([True] * 3))
