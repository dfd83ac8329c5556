"""What the UI shows, built by pure functions: check evaluations of a quarantined batch, numbers as readers take
them in."""

from __future__ import annotations

import dagster as dg

from carprice.defs.metadata import bullet_list, key_value_table, markdown_table, money_text, percent, percent_text
from carprice.defs.validation import check_result
from carprice.validation.admission import Verdict, one_line_reason
from carprice.validation.checks import ALL_CHECKS, CHECK_UNITS, CHECK_VALUES, Outcome


def _verdict(status: str, *outcomes: Outcome, review: dict | None = None) -> Verdict:
    return Verdict("automarkt-20261123T151812-84f159", status, list(outcomes), 3, {"reject_rate": 0.01}, review)


def test_a_failed_check_names_the_batch_and_why_on_one_line():
    units = Outcome(CHECK_UNITS, False, ["prices on another scale: median 1,200,000 vs 12,000 (×100)"],
                    {"price_ratio": 100.0, "thresholds": {"max_price_scale": 2.0}, "currencies": ["eur"]})
    result = check_result(units, _verdict("quarantined", units))
    assert not result.passed and result.severity == dg.AssetCheckSeverity.ERROR
    assert result.description == ("automarkt-20261123T151812-84f159 quarantined: prices on another scale: "
                                  "median 1,200,000 vs 12,000 (×100)")
    assert result.metadata["batch_id"].value == "automarkt-20261123T151812-84f159"
    evidence = result.metadata["evidence"].value
    assert "| price_ratio | 100 |" in evidence and "| thresholds.max_price_scale | 2 |" in evidence
    assert "| currencies | eur |" in evidence, "lists read as text, not a JSON button"


def test_a_readmitted_failure_is_a_warning_naming_the_reviewer():
    values = Outcome(CHECK_VALUES, False, ["null rates: mileage_km 0.4 > 0.05"], {})
    result = check_result(values, _verdict("readmitted", values, review={"reviewer": "ana"}))
    assert result.passed and result.severity == dg.AssetCheckSeverity.WARN
    assert "re-admitted by ana" in result.description and result.metadata["readmitted_by"].value == "ana"


def test_a_passed_check_says_so_for_its_batch():
    ok = Outcome(CHECK_VALUES, True, [], {"reject_rate": 0.01})
    assert check_result(ok, _verdict("accepted", ok)).description == "automarkt-20261123T151812-84f159: passed"


def test_one_line_reason_names_every_failed_check_however_long_their_failures():
    failed = {name: [f"{name} failure " + "z" * 300] for name in ALL_CHECKS[:4]}
    line = one_line_reason(failed)
    assert len(line) <= 200 and "\n" not in line
    assert all(f"{name}:" in line for name in failed), line


def test_one_line_reason_orders_checks_counts_the_rest_and_cuts():
    failed = {CHECK_UNITS: ["prices on another scale"], CHECK_VALUES: ["out of plausible range: market_price", "x"]}
    assert one_line_reason(failed) == (f"{CHECK_VALUES}: out of plausible range: market_price (+1 more); "
                                       f"{CHECK_UNITS}: prices on another scale")
    long = one_line_reason({CHECK_VALUES: ["y" * 500]}, width=80)
    assert len(long) == 80 and long.endswith("…") and "\n" not in long


def test_numbers_read_as_euros_and_percentages():
    assert percent(0.11864) == 11.9 and percent(0.73, 0) == 73.0
    assert percent_text(0.1186) == "11.9%" and percent_text(0.19, 0, signed=True) == "+19%"
    assert percent_text(None) == "n/a" and percent_text(float("nan")) == "n/a"
    assert money_text(3251.0395, "USD") == "3,251 USD" and money_text(None, "EUR") == "n/a"


def test_markdown_helpers():
    table = markdown_table(["a", "b"], [["x|y", 1]], right=[1])
    assert table.splitlines() == ["| a | b |", "|---|---:|", "| x\\|y | 1 |"]
    assert bullet_list([]) == "none" and bullet_list(["a", "b"]) == "- a\n- b"
    assert key_value_table({}) == "none"


# --- monitoring, judgement and the current model, as the UI shows them -------------------------------------------

def _summary(**overrides):
    from carprice.monitoring.drift import MonitoringSummary

    base = dict(n_reference=5000, n_current=3000, drifted_columns=1, n_columns=12, drift_share=1 / 12,
                column_scores={"mileage_km": {"method": "wasserstein", "score": 0.1234, "threshold": 0.1,
                                              "drifted": True},
                               "make": {"method": "jensenshannon", "score": 0.02, "threshold": 0.1, "drifted": False},
                               "power_kw": {"method": "wasserstein", "score": None, "threshold": 0.1,
                                            "drifted": False, "skipped": "no values in the current batch"}},
                prediction_drift_score=0.01834, prediction_drifted=False, target_drift_score=0.2, mae=3251.0395,
                mape=0.11864, reference_mae=2800.4, reference_mape=0.1, decay=0.1864, n_fresh=624,
                segment_errors=[{"column": "body", "segment": "suv", "n": 80, "mae": 6000.2, "mape": 0.3,
                                 "vs_model": 2.0}])
    base.update(overrides)
    return MonitoringSummary(**base)


def _monitoring_metadata(tmp_path, summary, triggers=()):
    from carprice.defs.monitoring import monitoring_metadata
    from carprice.defs.resources import ReportsResource
    from carprice.monitoring.batch import BatchMonitoring

    reports = ReportsResource(data_dir=str(tmp_path), base_url="http://127.0.0.1:3001/")
    summary.report_path = reports.root / "b1" / "drift.html"
    outcome = BatchMonitoring("b1", "monitored", "", "m1", summary, list(triggers))
    return {k: getattr(v, "value", v) for k, v in monitoring_metadata(outcome, reports, "2026-11-23").items()}, \
        monitoring_metadata(outcome, reports, "2026-11-23")


def test_monitoring_metadata_reads_in_euros_and_percent_without_constant_plots(tmp_path):
    values, raw = _monitoring_metadata(tmp_path, _summary(), [("decay", "MAPE 11.9% > 10.0% × 1.2")])
    assert values["mae"] == 3251 and values["mape_pct"] == 11.9 and values["decay_pct"] == 18.6
    assert values["model_eval_mape_pct"] == 10.0 and values["drift_share_pct"] == 8.3
    assert values["prediction_drift_score"] == 0.018 and values["market_day"] == "2026-11-23"
    assert "drifted_columns" not in values and "n_columns" not in values, "they never change: no plot"
    assert values["drift"] == "1 of 12 feature columns drifted"
    assert values["quality"].startswith("MAPE 11.9%, MAE 3,251 EUR on 624 listings new to the model")
    assert "(MAPE +19% relative)" in values["quality"]
    assert values["reports_index"] == "http://127.0.0.1:3001/index.html"
    assert values["trigger_reasons"] == "- MAPE 11.9% > 10.0% × 1.2"
    assert "| body | suv | 80 | 6,000 EUR | 30.0% | +200% |" in values["segment_errors"]
    assert not any(isinstance(v, dg.JsonMetadataValue) for v in raw.values()), "no raw JSON"
    table = raw["column_drift"]
    assert [r.data["column"] for r in table.records] == ["mileage_km", "make", "power_kw"]
    assert [r.data["drifted"] for r in table.records] == ["yes", "no", "no values in the current batch"]
    assert table.records[0].data["score"] == 0.123


def test_the_run_summary_reads_the_same_numbers_back(tmp_path):
    from carprice.defs.monitoring import summary_numbers, trigger_reasons

    values, _ = _monitoring_metadata(tmp_path, _summary(), [("decay", "first reason"), ("drift", "second")])
    numbers = summary_numbers(values)
    assert (numbers["drifted_columns"], numbers["n_columns"]) == (1, 12)
    assert abs(numbers["mape"] - 0.119) < 1e-9 and abs(numbers["decay"] - 0.186) < 1e-9
    assert abs(numbers["drift_share"] - 0.083) < 1e-9 and numbers["prediction_drift_score"] == 0.018
    assert numbers["trigger_reasons"] == ["first reason", "second"]
    assert trigger_reasons(["older", "json list"]) == ["older", "json list"] and trigger_reasons("none") == []
    skipped = summary_numbers({"status": "skipped: no champion yet", "trigger_reasons": "none"})
    assert skipped == {"status": "skipped: no champion yet", "trigger_reasons": []}


def _scores(coverage: float) -> dict:
    def overall(mae, ape, cov=None):
        out = {"mae": mae, "median_ape": ape, "mape": ape * 1.3, "r2": 0.91234, "n": 624}
        if cov is not None:
            out["interval_coverage"] = cov
        return out
    slices = {"make=bmw": {"n": 90, "mae": 3000.0, "median_ape": 0.12},
              "age=0-3y": {"n": 120, "mae": 2500.0, "median_ape": 0.08}}
    champion_slices = {"make=bmw": {"n": 90, "mae": 3100.0, "median_ape": 0.10},
                       "age=0-3y": {"n": 120, "mae": 2600.0, "median_ape": 0.081}}
    challenger = {"overall": overall(1947.4, 0.095, coverage), "slices": slices}
    return {"challenger": challenger, "champion": {"overall": overall(2100.0, 0.1, 0.9), "slices": champion_slices},
            "baselines": {"linear_ridge": {"overall": overall(2303.2, 0.14)}}, "champion_after": challenger}


def test_the_judgement_leads_with_the_decision_and_flags_a_narrow_interval():
    from carprice.defs.training import decision_metadata, serving_scores
    from carprice.training.promotion import PromotionResult

    result = PromotionResult("c2", "c1", "c2", True, "mae 1947 improves", None, 624, _scores(0.73))
    meta = decision_metadata(result)
    assert list(meta)[:2] == ["promoted", "reason"]
    assert isinstance(meta["scores"], dg.MarkdownMetadataValue) and isinstance(meta["slices"], dg.MarkdownMetadataValue)
    assert "| challenger | 1,947 EUR | 9.5% | 12.4% | 0.912 | 73% | 624 |" in meta["scores"].value
    assert "| baseline linear_ridge | 2,303 EUR |" in meta["scores"].value
    assert meta["slices"].value.splitlines()[2] == "| age=0-3y | 120 | 2,500 EUR | 2,600 EUR | -4% |", \
        "slices by the promotion's metric, the biggest change first"
    by_ape = decision_metadata(result, main_metric="median_ape")["slices"].value
    assert by_ape.splitlines()[2] == "| make=bmw | 90 | 12.0% | 10.0% | +20% |"
    assert meta["champion_mae"] == 1947 and meta["champion_median_ape_pct"] == 9.5
    assert meta["champion_interval_coverage_pct"] == 73.0 and meta["baseline_linear_ridge_mae"] == 2303
    assert meta["interval_coverage_check"].startswith("interval too narrow: covers 73% of prices, target 90%")
    assert "registry_entry" not in meta
    assert not any(isinstance(v, dg.JsonMetadataValue) for v in meta.values())
    ok = decision_metadata(PromotionResult("c2", "c1", "c2", True, "ok", None, 624, _scores(0.88)))
    assert ok["interval_coverage_check"] == "ok: 88% covered, target 90%"
    back = serving_scores({k: getattr(v, "value", v) for k, v in meta.items()})
    assert back["mae"] == 1947 and abs(back["median_ape"] - 0.095) < 1e-9 and back["n"] == 624
    assert abs(back["interval_coverage"] - 0.73) < 1e-9 and back["r2"] == 0.912


def test_coverage_flag_only_far_below_target():
    from carprice.training.overview import coverage_flag

    assert coverage_flag(0.73, 0.9, 0.05).startswith("interval too narrow: covers 73%")
    assert coverage_flag(0.86, 0.9, 0.05) == "" and coverage_flag(None, 0.9, 0.05) == ""
    assert coverage_flag(float("nan"), 0.9, 0.05) == ""


def test_interval_text_reads_as_shares_of_the_price():
    from carprice.defs.training import interval_text

    assert interval_text((-0.2231, 0.1823)) == "-20% / +20% of the predicted price"
