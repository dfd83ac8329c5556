"""The report server's own pages: the reports index by market day, the current-model view, the quality report's
summary with per-segment errors."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import pandas as pd

from carprice.ingest.store import batch_market_days
from carprice.monitoring.pages import index_rows, quality_preamble, render_index, render_model, short_day
from carprice.monitoring.segments import segment_errors
from carprice.training.overview import ModelOverview
from carprice.warehouse import Warehouse, insert


def test_segment_errors_find_the_segment_a_shift_hit():
    frame = pd.DataFrame({
        "body": ["suv"] * 40 + ["sedan"] * 40 + ["van"] * 5,
        "make": ["kia"] * 85,
        "market_price": [10_000.0] * 85,
        "predicted_price": [7_000.0] * 40 + [9_500.0] * 40 + [1_000.0] * 5,
    })
    segments = segment_errors(frame, ("body", "make", "missing_column"), min_rows=30, reference_mape=0.1)
    assert [(s["column"], s["segment"], s["n"]) for s in segments] == [("body", "suv", 40), ("make", "kia", 85),
                                                                       ("body", "sedan", 40)]
    suv = segments[0]
    assert round(suv["mape"], 3) == 0.3 and suv["mae"] == 3000.0 and round(suv["vs_model"], 3) == 2.0
    assert all(s["segment"] != "van" for s in segments), "too few rows to judge"
    assert segment_errors(frame, ("body",), min_rows=30)[0]["vs_model"] is None


def test_market_day_of_a_batch_is_its_newest_listing_date(tmp_path):
    wh = Warehouse(tmp_path / "w.duckdb")
    now = datetime(2026, 11, 28, 15, 37, tzinfo=UTC)
    with wh.transaction() as con:
        insert(con, "batches", [{"batch_id": "a-20261128T153700", "source": "a", "started_at": now, "ingested_at": now},
                                {"batch_id": "b-empty", "source": "a", "started_at": now, "ingested_at": now}])
        insert(con, "raw_listings", [{"batch_id": "a-20261128T153700", "ingested_at": now, "listed_at": d}
                                     for d in ("2026-11-22", "2026-11-23", None, "not a date")])
    assert batch_market_days(wh) == {"a-20261128T153700": date(2026, 11, 23), "b-empty": date(2026, 11, 28)}


def _overview_rows(tmp_path: Path) -> list[dict]:
    (tmp_path / "b2").mkdir()
    (tmp_path / "b2" / "drift.html").write_text("x")
    (tmp_path / "b2" / "quality.html").write_text("x")
    frame = pd.DataFrame([
        {"batch_id": "b1", "status": "accepted", "reason": "all checks passed", "decided_at": "1", "listings": 3000,
         "drift_share": 0.0, "drifted_columns": 0, "n_columns": 12, "mape": 0.12, "reference_mape": 0.1,
         "decay": 0.2, "triggers": "[]", "report_path": None, "quality_report_path": None, "segment_errors": "[]"},
        {"batch_id": "b3", "status": "quarantined", "reason": "units_and_currencies_consistent: prices ×100",
         "decided_at": "3", "listings": 3010, "drift_share": float("nan"), "triggers": None, "report_path": None,
         "quality_report_path": None, "segment_errors": None},
        {"batch_id": "b2", "status": "accepted", "reason": "all checks passed", "decided_at": "2", "listings": 2990,
         "drift_share": 1 / 12, "drifted_columns": 1, "n_columns": 12, "mape": 0.18, "reference_mape": 0.1,
         "decay": 0.8, "triggers": json.dumps([{"kind": "decay", "reason": "r"}]),
         "report_path": str(tmp_path / "b2" / "drift.html"),
         "quality_report_path": str(tmp_path / "b2" / "quality.html"),
         "segment_errors": json.dumps([{"column": "body", "segment": "suv", "n": 80, "mae": 6000,
                                        "mape": 0.35, "vs_model": 2.5}])},
    ])
    days = {"b1": date(2026, 11, 20), "b2": date(2026, 11, 21), "b3": date(2026, 11, 22)}
    return index_rows(frame, days, tmp_path)


def test_index_has_one_row_per_batch_newest_day_first_with_links(tmp_path):
    rows = _overview_rows(tmp_path)
    assert [r["batch_id"] for r in rows] == ["b3", "b2", "b1"]
    assert rows[1]["links"] == {"drift": "b2/drift.html", "quality": "b2/quality.html"}
    assert rows[2]["links"] == {}, "only reports that exist are linked"
    assert rows[1]["trigger_kinds"] == ["decay"] and rows[1]["worst_segment"]["segment"] == "suv"
    page = render_index(rows)
    assert page.index("2026-11-22") < page.index("2026-11-21") < page.index("2026-11-20")
    assert '<tr class="quarantined"><td>2026-11-22</td><td>b3</td>' in page
    assert "prices ×100" in page
    assert '<td class="n">1/12 (8%)</td><td class="n">18.0%</td><td class="n"><span class="bad">+80%</span>' in page
    assert "body=suv 35.0%" in page and '<a href="b2/quality.html">quality</a>' in page
    # Trend plots are labelled by market day, never by the long batch ids.
    assert page.count("<svg") == 3 and ">11-21<" in page and "b2</text>" not in page


def test_index_before_two_monitored_batches_says_plots_come_later():
    assert "Trend plots appear once two batches are monitored" in render_index([])
    assert "No batch validated yet" in render_index([])
    assert short_day(date(2026, 11, 23)) == "11-23"


def test_model_view_shows_champion_coverage_flag_and_rejections():
    champion = {"version": "v2", "status": "champion", "trained_at": pd.Timestamp("2026-11-20 15:00"),
                "trained_because": "(decay) MAPE up", "n_train": 9000, "train_batches": 4, "decision": "promoted",
                "reason": "mae improves", "evaluation": {"mae": 1947.3, "median_ape": 0.095, "mape": 0.12,
                                                         "r2": 0.91, "interval_coverage": 0.73, "n": 624},
                "promoted_at": pd.Timestamp("2026-11-20 15:01"), "promoted_because": "mae 1947 improves on 2100",
                "code_version": "0.1+abc", "sha256": "f" * 64, "artifact": "/m/v2"}
    history = [champion, {"version": "v3", "status": "rejected", "trained_at": pd.Timestamp("2026-11-21"),
                          "trained_because": "cadence", "decision": "rejected", "mae": 2050.0,
                          "champion_mae": 1990.0, "reason": "mae 2050 does not improve on 1990 by 1%"}]
    view = ModelOverview(champion, history, [{"batch_id": "b9", "n_fresh": 600, "mae": 2100.0, "mape": 0.13,
                                              "decay": 0.08}])
    page = render_model(view, coverage_tolerance=0.05)
    assert "Champion v2" in page and "1,947 EUR" in page and "9.5%" in page
    assert '<span class="bad">73%</span>' in page and "interval too narrow: covers 73% of prices, target 90%" in page
    assert "mae 1947 improves on 2100" in page and "(decay) MAPE up" in page
    assert '<td class="bad">rejected</td>' in page and "does not improve on 1990 by 1%" in page
    assert "<td>b9</td>" in page
    assert "No champion yet" in render_model(ModelOverview(None, []), 0.05)


def test_quality_preamble_compares_with_the_models_own_evaluation():
    from carprice_tests.defs.test_metadata import _summary

    html = quality_preamble(_summary())
    assert "The champion on 624 listings it never saw:</b> MAE 3,251 EUR, MAPE 11.9%" in html
    assert "its own evaluation gave MAPE 10.0%, MAE 2,800 EUR; on new listings it is +19% relative" in html
    assert "<td>suv</td>" in html and '<td class="n bad">+250%</td>' not in html and "+200%" in html


def test_pages_and_triggers_name_the_installation_currency():
    from carprice.config import MonitoringConfig
    from carprice.monitoring.drift import retraining_triggers
    from carprice_tests.defs.test_metadata import _summary

    summary = _summary()
    html = quality_preamble(summary, "USD")
    assert "MAE 3,251 USD" in html and "EUR" not in html
    assert all("EUR" not in t.reason for t in retraining_triggers(summary, MonitoringConfig(), "USD"))
    decayed = _summary(mape=0.2, decay=1.0)
    reasons = [t.reason for t in retraining_triggers(decayed, MonitoringConfig(), "USD")]
    assert any("MAE 3,251 USD vs 2,800 USD" in reason for reason in reasons)
