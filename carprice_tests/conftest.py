"""Shared fixtures: a real crawl of a small simulated marketplace, reused by the warehouse and asset tests; the
process tree under a process, for the tests that stop one."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import HTTPServer
from pathlib import Path

import pandas as pd
import pytest

from carprice.config import EMBEDDED_SOURCE, Settings, SourceConfig
from carprice.ingest.landing import Batch, read_batch
from carprice.market.generator import Market, MarketConfig
from carprice.market.pages import description_of, title_of
from carprice.market.server import running_marketplace
from carprice.scraping.crawl import CrawlResult, crawl_source

# Saved pages the parsers are tested on.
PAGES = Path(__file__).parent / "fixtures" / "pages"

SMALL_MARKET = {"market_seed": 11, "market_day": 30, "market_listings": 1500}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that needs a real crawl is in the integration tier, wherever it lives. On pytest-xdist workers the
    slow modules come first, so that the quick ones fill the gaps and the workers finish together."""
    for item in items:
        if "crawled_batch" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.integration)
    # xdist hands out whole files (--dist loadfile) in this order; every worker sorts alike, as it must.
    if os.environ.get("PYTEST_XDIST_WORKER"):
        items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.fixture(scope="session")
def crawled_batch(tmp_path_factory) -> Batch:
    """One batch landed by the real spider crawling the real local marketplace over HTTP."""
    landing = tmp_path_factory.mktemp("landing")
    return crawl_market(landing, seed=SMALL_MARKET["market_seed"], day=SMALL_MARKET["market_day"],
                        listings=SMALL_MARKET["market_listings"]).batch


@pytest.fixture
def settings(tmp_path) -> Settings:
    """Settings whose every path is inside this test's temporary folder."""
    return Settings(data_dir=tmp_path / "data", dagster_home=tmp_path / "dagster_home", **SMALL_MARKET,
                    crawl_timeout_s=300)


def copy_batch(batch: Batch, landing_dir: Path) -> Batch:
    """A copy of ``batch`` in another landing zone (tests never touch the shared one)."""
    target = landing_dir / batch.source / batch.batch_id
    shutil.copytree(batch.path, target)
    return read_batch(target)


def crawl_market(landing_dir: Path, *, seed: int, day: int, listings: int, faults: frozenset[str] = frozenset(),
                 source: SourceConfig = EMBEDDED_SOURCE, max_pages: int | None = None) -> CrawlResult:
    """A real crawl of the simulated marketplace as it is on ``day``, started for the crawl and stopped after."""
    with running_marketplace(seed, day, listings, faults=faults) as base:
        return crawl_source(source, landing_dir, start_url=f"{base}/cars?page=1", timeout_s=300, max_pages=max_pages)


def clean_frame_from_market(n: int = 2500, seed: int = 4, day: int = 40) -> pd.DataFrame:
    """Clean-listing rows straight from the simulated market's truth (no crawl), absurd prices left out; each listing
    states its date and was first seen the morning it was listed (crawled daily)."""
    market = Market(MarketConfig.for_active_listings(n, seed=seed))
    rows = []
    for lst in market.listings_on(day):
        if lst.absurd_price:
            continue
        car = lst.car
        listed = market.date_of(lst.listed_day).isoformat()
        rows.append(dict(
            listing_key=f"market:{lst.path}", url=f"http://x{lst.path}", title=title_of(lst),
            description=description_of(lst), make=car.spec.make,
            model=car.spec.model, model_year=car.model_year, first_registration=car.first_registration.isoformat(),
            mileage_km=float(car.mileage_km), fuel=car.fuel, transmission=car.transmission, body=car.spec.body,
            power_kw=float(car.power_kw), color=car.color, doors=car.doors, condition=car.condition,
            market_price=round(lst.price_on(day)), seller_type=lst.seller_type, region=lst.region,
            listed_at=listed, listed_at_stated=True, first_seen_at=f"{listed}T06:00:00+00:00"))
    return pd.DataFrame(rows)


@contextmanager
def serving_in_background(server: HTTPServer) -> Iterator[HTTPServer]:
    """``server`` answering on a thread of its own for the block; shut down and closed after it."""
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def descendants(pid: int) -> dict[int, str]:
    """The processes under ``pid`` (its children, theirs, and so on) and the start of their command lines."""
    found = {}
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children = [int(child) for child in (task / "children").read_text().split()]
        except OSError:
            continue
        for child in children:
            try:
                found[child] = Path(f"/proc/{child}/cmdline").read_text().replace("\0", " ").strip()[:1000]
            except OSError:
                continue
            found.update(descendants(child))
    return found


def running(pid: int) -> bool:
    """Whether process ``pid`` exists and has not exited (a zombie has: only its exit status is left)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def still_running(processes: dict[int, str], within_s: float) -> dict[int, str]:
    """Those of ``processes`` still running after up to ``within_s`` seconds of waiting for them to end."""
    deadline = time.monotonic() + within_s
    while any(running(pid) for pid in processes) and time.monotonic() < deadline:
        time.sleep(0.1)
    return {pid: cmd for pid, cmd in processes.items() if running(pid)}


def kill_leftovers(proc: subprocess.Popen, tree: dict[int, str]) -> None:
    """After a test: SIGKILL ``proc``'s group if it still runs, and any process of ``tree`` that outlived it."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    for pid in still_running(tree, within_s=0):
        os.kill(pid, signal.SIGKILL)
