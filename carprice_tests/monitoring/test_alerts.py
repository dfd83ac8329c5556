"""Alerts: a line in the log, a row in the warehouse, and one hook that may fail without losing anything."""

from __future__ import annotations

import json
import logging

import pandas as pd
import pytest

from carprice.monitoring.alerts import Alert, dispatch_alerts, load_hook
from carprice.warehouse import Warehouse

SENT: list[Alert] = []


def collect(alert: Alert) -> None:
    """A hook as a user would write one (here it keeps the alerts instead of posting them)."""
    SENT.append(alert)


def explode(alert: Alert) -> None:
    raise ConnectionError("chat server unreachable")


NOT_A_FUNCTION = 42


def test_alerts_are_logged_recorded_and_sent(tmp_path, caplog):
    SENT.clear()
    wh = Warehouse(tmp_path / "wh.duckdb")
    alerts = [Alert("check_failed", "automarkt-1", "values_within_contract failed: 4% out of range",
                    details={"check": "values_within_contract"}),
              Alert("decay", "automarkt-2", "retraining requested: MAPE 15% vs 9%")]
    with caplog.at_level(logging.WARNING):
        n = dispatch_alerts(wh, alerts, log=logging.getLogger("t"), hook=load_hook(f"{__name__}:collect"), run_id="r1")
    assert n == 2 and alerts == SENT
    assert "ALERT [check_failed] automarkt-1: values_within_contract failed: 4% out of range" in caplog.text
    rows = wh.query("SELECT kind, subject, details, run_id, delivered, delivery_error FROM alerts ORDER BY kind")
    assert rows[["kind", "subject", "run_id"]].values.tolist() == [["check_failed", "automarkt-1", "r1"],
                                                                   ["decay", "automarkt-2", "r1"]]
    assert json.loads(rows.iloc[0]["details"]) == {"check": "values_within_contract"}
    assert rows["delivered"].tolist() == [True, True] and rows["delivery_error"].isna().all()


def test_a_failing_hook_loses_no_alert(tmp_path, caplog):
    wh = Warehouse(tmp_path / "wh.duckdb")
    with caplog.at_level(logging.WARNING):
        dispatch_alerts(wh, [Alert("batch_quarantined", "automarkt-3", "quarantined")], log=logging.getLogger("t"),
                     hook=load_hook(f"{__name__}:explode"))
    row = wh.query("SELECT * FROM alerts").iloc[0]
    assert row["message"] == "quarantined" and not row["delivered"]
    assert row["delivery_error"] == "ConnectionError: chat server unreachable"
    assert "alert hook failed for batch_quarantined on automarkt-3" in caplog.text


def test_without_a_hook_alerts_are_still_recorded(tmp_path):
    wh = Warehouse(tmp_path / "wh.duckdb")
    assert dispatch_alerts(wh, [], log=logging.getLogger("t")) == 0
    dispatch_alerts(wh, [Alert("drift", "b", "5 of 12 columns drifted")], log=logging.getLogger("t"))
    row = wh.query("SELECT delivered, kind FROM alerts").iloc[0]
    assert row["kind"] == "drift" and pd.isna(row["delivered"]), "no hook: nothing to deliver to"


@pytest.mark.parametrize(("spec", "message"), [
    (__name__, "is named 'package.module:function'"),
    ("no_such_module:send", "cannot be loaded"),
    (f"{__name__}:missing", "cannot be loaded"),
    (f"{__name__}:NOT_A_FUNCTION", "is not a function"),
])
def test_a_bad_hook_name_is_a_clear_error(spec, message):
    with pytest.raises(ValueError, match=message):
        load_hook(spec)


def test_unknown_alert_kinds_are_refused():
    assert load_hook("") is None
    with pytest.raises(ValueError, match="unknown alert kind 'oops'"):
        Alert("oops", "x", "y")


def test_the_resource_records_alerts_even_when_its_hook_cannot_load(tmp_path, caplog):
    from carprice.defs.resources import AlertsResource

    wh = Warehouse(tmp_path / "wh.duckdb")
    resource = AlertsResource(hook="carprice_tests.no_such_hook_module:send")
    with caplog.at_level(logging.WARNING):
        assert resource.send(wh, [Alert("drift", "b", "7 of 12 columns drifted")], logging.getLogger("t"), "r9") == 1
    assert "alerts are recorded but not sent" in caplog.text and "ModuleNotFoundError" in caplog.text
    row = wh.query("SELECT kind, run_id, delivered FROM alerts").iloc[0]
    assert (row["kind"], row["run_id"]) == ("drift", "r9") and pd.isna(row["delivered"])
