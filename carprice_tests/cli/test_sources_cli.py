"""Sources configured only through the command line and sources.toml: a second, differently built site is added,
checked, crawled on its own schedule beside the embedded marketplace and on demand; a site with no vehicle data
fails its crawl, and its empty batch is quarantined with an alert."""

from __future__ import annotations

from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import dagster as dg
import pytest

from carprice.cli import main
from carprice.cli.commands import FAILED_EXIT, QUARANTINED_EXIT
from carprice.config import Settings
from carprice.definitions import build_definitions
from carprice.sources import load_sources
from carprice.validation.store import batch_statuses
from carprice.warehouse import Warehouse
from carprice_tests.conftest import serving_in_background
from carprice_tests.othersite import running_othersite

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MARKET = ["--listings", "900", "--seed", "11", "--day", "30"]


def test_a_second_site_added_checked_scheduled_and_crawled_on_demand(tmp_path, capsys, monkeypatch):
    data = tmp_path / "data"
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    with running_othersite(seed=5, day=3, listings=150) as base:
        assert main(["sources", "add", "usedcars_us", "--start-url", f"{base}/search?offset=0",
                     "--link-css", "a.result-title", "--next-css", "a.more", "--currency", "USD",
                     "--distance-unit", "mi", "--concurrency", "8", "--delay", "0", "--schedule", "0 7 * * *",
                     "--data-dir", str(data)]) == 0
        assert "added source usedcars_us" in capsys.readouterr().out
        assert list(load_sources(data / "sources.toml")) == ["automarkt", "usedcars_us"]

        assert main(["sources", "check", "usedcars_us", "--pages", "10", "--data-dir", str(data)]) == 0
        check = capsys.readouterr().out
        assert "listings read" in check and "mileage_km" in check and "currency=USD" in check
        assert not (data / "landing").exists(), "a check lands nothing"

        settings = Settings(data_dir=data, dagster_home=data / "dagster")
        schedules = {s.name: s.cron_schedule for s in build_definitions(settings).schedules}
        assert schedules == {"crawl_automarkt": "0 6 * * *", "crawl_usedcars_us": "0 7 * * *"}

        # One simulated day ticks both schedules; the new site's first batch waits for a person's review.
        assert main(["run", *MARKET, "--data-dir", str(data)]) == QUARANTINED_EXIT
        out = capsys.readouterr().out
        assert "crawl_automarkt -> crawl_job [automarkt]" in out
        assert "crawl_usedcars_us -> crawl_job [usedcars_us]" in out
        statuses = batch_statuses(Warehouse(data / "warehouse.duckdb"), None)
        by_source = dict(zip(statuses["batch_id"].str.rsplit("-", n=2).str[0], statuses["status"]))
        assert by_source == {"automarkt": "accepted", "usedcars_us": "quarantined"}
        assert "other batch      usedcars_us-" in out and "source_reference_reviewed" in out

        # On demand: one crawl of the site, landed and processed as a scheduled one.
        code = main(["crawl", "--source", "usedcars_us", *MARKET, "--data-dir", str(data)])
        out = capsys.readouterr().out
        assert code == QUARANTINED_EXIT and "carprice crawl -> crawl_job [usedcars_us]" in out
        assert "sensor landing_sensor -> batch_job [usedcars_us-" in out

    with dg.DagsterInstance.from_config(str(data / "dagster")) as instance:
        assert sorted(instance.get_dynamic_partitions("sources")) == ["automarkt", "usedcars_us"]
        runs = instance.get_runs(filters=dg.RunsFilter(job_name="crawl_job"))
        assert sorted(r.tags["dagster/partition"] for r in runs) == ["automarkt", "usedcars_us", "usedcars_us"]
    landed = sorted(p.name for p in (data / "landing" / "usedcars_us").iterdir())
    assert len(landed) == 2


class _NoCarsSite(ThreadingHTTPServer):
    """A site whose pages are about anything but cars."""

    def __init__(self):
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                body = b"User-agent: *\nAllow: /\n" if self.path == "/robots.txt" else \
                    b"<html><body><h1>Garden furniture</h1><a href='/chairs'>chairs</a></body></html>"
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        super().__init__(("127.0.0.1", 0), Handler)


def test_a_site_without_vehicle_data_fails_its_crawl_and_its_empty_batch_is_quarantined(tmp_path, capsys,
                                                                                        monkeypatch):
    data = tmp_path / "data"
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    with serving_in_background(_NoCarsSite()) as site:
        url = f"http://127.0.0.1:{site.server_address[1]}/"
        assert main(["sources", "add", "garden", "--start-url", url, "--delay", "0", "--data-dir", str(data)]) == 0
        assert main(["sources", "check", "garden", "--data-dir", str(data)]) == FAILED_EXIT
        assert "NO LISTING" in capsys.readouterr().out
        code = main(["crawl", "--source", "garden", *MARKET, "--data-dir", str(data)])
    out = capsys.readouterr().out
    assert code == FAILED_EXIT
    assert "the crawl of garden landed no listing" in out and "carprice sources check garden" in out
    wh = Warehouse(data / "warehouse.duckdb")
    statuses = batch_statuses(wh, None)
    assert list(statuses["status"]) == ["quarantined"] and "no listings in the batch" in statuses["reason"][0]
    with wh.connect() as con:
        kinds = [k for (k,) in con.execute("SELECT kind FROM alerts").fetchall()]
    assert "batch_quarantined" in kinds


def test_a_bad_sources_file_stops_a_command_before_any_crawl(tmp_path, capsys, monkeypatch):
    data = tmp_path / "data"
    data.mkdir()
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    (data / "sources.toml").write_text('[sources.automarkt]\nstart_urls = ["embedded"]\nshedule = "0 6 * * *"\n',
                                       encoding="utf-8")
    for command in (["run"], ["crawl", "--source", "automarkt"], ["sources", "list"]):
        assert main([*command, "--data-dir", str(data)]) == 2
        err = capsys.readouterr().err
        assert f"{data / 'sources.toml'}:3: sources.automarkt.shedule: unknown key; did you mean 'schedule'" in err
    assert not (data / "landing").exists()
