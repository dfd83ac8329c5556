"""Settings read from and written to the environment, and the one market calendar."""

from __future__ import annotations

import os
from datetime import date

from carprice.config import (
    DEFAULT_DATA_DIR,
    ENV_VARS,
    MARKET_CALENDAR_START,
    Settings,
    load_settings,
    market_date,
    market_day,
)


def test_to_env_reads_back_to_the_same_settings(tmp_path):
    settings = Settings(data_dir=tmp_path / "data", dagster_home=tmp_path / "elsewhere", market_seed=3,
                        market_listings=1200, market_day=-4, market_faults=frozenset({"prices_x100@12", "new_field"}),
                        market_shifts="suv+30%@40", crawl_timeout_s=90, alert_hook="pkg.mod:hook",
                        reports_url="http://127.0.0.1:4001/")
    env = settings.to_env()
    assert set(env) == set(ENV_VARS.values()) and all(isinstance(v, str) for v in env.values())
    assert env["CARPRICE_MARKET_FAULTS"] == "new_field,prices_x100@12"
    assert load_settings(env) == settings


def test_defaults_when_the_environment_is_empty():
    settings = load_settings({})
    assert settings.data_dir == DEFAULT_DATA_DIR and settings.dagster_home == DEFAULT_DATA_DIR / "dagster"
    assert settings.market_day == market_day(date.today()) and settings.market_faults == frozenset()
    assert load_settings(settings.to_env()) == settings


def test_the_market_calendar_goes_both_ways():
    assert market_date(0) == MARKET_CALENDAR_START and market_day(MARKET_CALENDAR_START) == 0
    assert market_date(14) == date(2026, 1, 15) and market_day(date(2026, 11, 26)) == 329
    assert all(market_day(market_date(day)) == day for day in (-150, -1, 1, 365, 1000))


def test_the_code_location_reads_its_resources_from_the_environment(tmp_path, monkeypatch):
    """Without settings, resources are dg.EnvVar; unset variables get their defaults from export_defaults."""
    import dagster as dg

    from carprice.config import ENV_VARS, export_defaults
    from carprice.definitions import build_definitions
    from carprice.defs.publishing import warehouse_snapshot

    for var in ENV_VARS.values():  # set, then removed: monkeypatch restores each one after the test
        monkeypatch.setenv(var, "")
        monkeypatch.delenv(var)
    monkeypatch.setenv(ENV_VARS["data_dir"], str(tmp_path / "data"))
    export_defaults()
    defs = build_definitions()
    assert isinstance(defs.resources["warehouse"].data_dir, dg.EnvVar)
    result = dg.materialize([warehouse_snapshot], resources=defs.resources, instance=dg.DagsterInstance.ephemeral())
    assert result.success and (tmp_path / "data" / "warehouse-snapshot.duckdb").exists()
    assert os.environ[ENV_VARS["market_seed"]] == str(Settings.market_seed)
    # Left to each process: today's market day, and the Dagster home.
    assert ENV_VARS["market_day"] not in os.environ and ENV_VARS["dagster_home"] not in os.environ
    assert defs.resources["scraper"].marketplace.day is None
