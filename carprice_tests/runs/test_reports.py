"""The simulated clock's and the day reports' pure parts: no Dagster run needed."""

from __future__ import annotations

from datetime import UTC, date, datetime

from carprice.config import DEFAULT_DATA_DIR, Settings
from carprice.runs.clock import first_tick
from carprice.runs.reports import DayReport, look_commands


def test_the_summary_opens_the_data_folder_the_run_used(tmp_path):
    settings = Settings(data_dir=tmp_path / "data", dagster_home=tmp_path / "data" / "dagster")
    query, ui = look_commands(settings)
    assert query == f".venv/bin/carprice sql --data-dir {tmp_path / 'data'} 'SHOW TABLES'"
    assert ui == f".venv/bin/carprice ui --data-dir {tmp_path / 'data'}"

    report = DayReport(day=3, date="2026-01-04", settings=settings, batch_id="automarkt-x", status="quarantined")
    text = report.render()
    assert f"open the UI      .venv/bin/carprice ui --data-dir {tmp_path / 'data'}   (then" in text
    assert f"analysts query   .venv/bin/carprice sql --data-dir {tmp_path / 'data'} 'SHOW TABLES'   (a snapshot" in text
    assert "settings" not in report.to_json()


def test_the_default_installation_needs_no_option_and_another_dagster_home_is_named(tmp_path):
    default = Settings(data_dir=DEFAULT_DATA_DIR, dagster_home=DEFAULT_DATA_DIR / "dagster")
    assert look_commands(default) == (".venv/bin/carprice sql 'SHOW TABLES'", ".venv/bin/carprice ui")
    elsewhere = Settings(data_dir=DEFAULT_DATA_DIR, dagster_home=tmp_path / "my home")
    assert look_commands(elsewhere)[1] == f"DAGSTER_HOME='{tmp_path / 'my home'}' .venv/bin/carprice ui"


def test_the_days_summary_names_the_data_folder_in_both_hints(tmp_path):
    from carprice.runs.reports import render_days

    settings = Settings(data_dir=tmp_path / "my data", dagster_home=tmp_path / "my data" / "dagster")
    report = DayReport(day=3, date="2026-01-04", settings=settings, batch_id="automarkt-x", status="accepted")
    text = render_days([report], settings)
    assert f"analysts query   .venv/bin/carprice sql --data-dir '{tmp_path / 'my data'}' 'SHOW TABLES'" in text
    assert f"open the UI      .venv/bin/carprice ui --data-dir '{tmp_path / 'my data'}'   (then" in text


def test_a_day_ticks_a_schedule_at_its_first_time_that_day_or_not_at_all():
    monday = date(2026, 11, 23)
    assert first_tick("0 6 * * *", monday) == datetime(2026, 11, 23, 6, 0, tzinfo=UTC)
    assert first_tick("*/30 * * * *", monday) == datetime(2026, 11, 23, 0, 0, tzinfo=UTC)
    assert first_tick("15 3 * * 1", monday) == datetime(2026, 11, 23, 3, 15, tzinfo=UTC)
    assert first_tick("15 3 * * 1", date(2026, 11, 24)) is None


def test_a_failed_run_is_named_in_the_summary_and_the_day_line(tmp_path):
    settings = Settings(data_dir=tmp_path / "data", dagster_home=tmp_path / "data" / "dagster")
    report = DayReport(day=3, date="2026-01-04", settings=settings, batch_id="automarkt-x", status="accepted",
                       errors=["batch other was not validated (run 1234): step raw_listings failed: BatchError: x"])
    assert "  RUN FAILED       batch other was not validated (run 1234)" in report.render()
    assert "carprice batches list --status unfinished" in report.render()
    assert report.line().endswith("1 run(s) FAILED")


def test_the_exception_line_of_a_step_failure_is_the_one_naming_the_error():
    from carprice.runs.launcher import _exception_line

    traceback_tail = ('  File "x.py", line 3, in f\n    columns = read(path)\n              ^^^^^^^^^^\n'
                      "carprice.ingest.landing.BatchError: /x/listings.jsonl is not a regular file\n")
    expected = "carprice.ingest.landing.BatchError: /x/listings.jsonl is not a regular file"
    assert _exception_line(traceback_tail) == expected
    assert _exception_line("something broke\n   ^^^^\n") == "something broke"
    assert _exception_line("") == ""


def _monitored_report(settings: Settings, **fields) -> DayReport:
    monitoring = {"drift_share": 0.0, "drifted_columns": 0, "n_columns": 12, "prediction_drift_score": 0.012,
                  "mape": 0.177, "reference_mape": 0.116, "decay": 0.526, "trigger_kinds": "decay",
                  "trigger_reasons": ["champion MAPE on 400 fresh listings is 17.7%"], "report_url": "http://x/"}
    return DayReport(day=324, date="2026-11-21", settings=settings, batch_id="automarkt-x", status="accepted",
                     monitoring=monitoring, **fields)


def test_an_alert_on_a_day_that_trained_nothing_says_what_training_waits_for(tmp_path):
    settings = Settings(data_dir=tmp_path / "data", dagster_home=tmp_path / "data" / "dagster")
    wait = ("decay asked for retraining; waiting for 1 batch more (1 batch monitored since the last training; a "
            "trigger trains after 2 batches, so that there is new data to learn from)")
    report = _monitored_report(settings, training_wait=wait)
    assert "| decay alert: waiting for 1 batch |" in report.line()
    assert f"  training         {wait}" in report.render()
    trained = _monitored_report(settings, challenger="v2", trigger="decay", promoted=True)
    assert "alert" not in trained.line() and "trained (decay) -> PROMOTED" in trained.line()


def test_the_error_on_new_listings_is_set_beside_the_models_own_as_a_relative_change(tmp_path):
    settings = Settings(data_dir=tmp_path / "data", dagster_home=tmp_path / "data" / "dagster")
    report = _monitored_report(settings)
    assert "| MAPE new 17.7% (model's own 11.6%, +53% relative) |" in report.line()
    assert "MAPE on new listings 17.7% (model's own 11.6%, +53% relative)" in report.render()
    from carprice.runs.reports import mape_against_model

    assert mape_against_model({"mape": 0.1, "decay": -0.01}) == "10.0% (-1% relative to the model's own)"
    assert mape_against_model({"mape": 0.1}) == "10.0%"


def test_a_rejected_challenger_is_marked_rejected_in_the_line_and_the_trainings(tmp_path):
    from carprice.runs.reports import render_days

    settings = Settings(data_dir=tmp_path / "data", dagster_home=tmp_path / "data" / "dagster")
    kept = _monitored_report(settings, challenger="v3", trigger="decay", promoted=False)
    promoted = _monitored_report(settings, challenger="v2", trigger="no_champion", promoted=True)
    promoted.day = 320
    assert "trained (decay) -> REJECTED, champion kept" in kept.line()
    text = render_days([promoted, kept], settings)
    assert "  trainings        2, promoted 1: day 320 no_champion (promoted); day 324 decay (rejected)" in text


def test_a_day_without_a_batch_holds_none_back_and_one_with_a_quarantined_second_batch_does(tmp_path):
    settings = Settings(data_dir=tmp_path / "data", dagster_home=tmp_path / "data" / "dagster")
    assert DayReport(day=3, date="2026-01-04", settings=settings).all_admitted
    two = DayReport(day=3, date="2026-01-04", settings=settings, batch_id="automarkt-x", status="accepted",
                    other_batches={"usedcars-y": "quarantined: failed source_reference_reviewed"})
    assert not two.all_admitted and two.quarantined_batches == ["usedcars-y"]
    assert "other batch      usedcars-y quarantined: failed source_reference_reviewed" in two.render()
    assert two.line().endswith("+1 batch(es), 1 quarantined")
