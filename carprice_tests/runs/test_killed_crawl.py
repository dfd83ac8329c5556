"""Operator's test: a real `carprice run` stopped during its crawl leaves no process behind (the marketplace server,
scrapy), and no unfinished batch once the next command has run."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.definitions.selector import InstigatorSelector
from dagster._core.remote_origin import RemoteRepositoryOrigin
from dagster._core.scheduler.instigation import TickStatus

from carprice.ingest.landing import remove_stale_tmp
from carprice.runs.launcher import code_location_origin
from carprice_tests.conftest import descendants, kill_leftovers, still_running

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CARPRICE = str(Path(sys.executable).with_name("carprice"))


def run_command(data: Path) -> list[str]:
    return [CARPRICE, "run", "--data-dir", str(data), "--listings", "600", "--seed", "3", "--day", "40"]


def env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("CARPRICE_") and k != "DAGSTER_HOME"}


def crawling(proc: subprocess.Popen, data: Path) -> dict[int, str]:
    """Wait until the run is crawling (its batch folder is being written); the processes under it."""
    deadline = time.monotonic() + 180
    while not list(data.glob("landing/*/.tmp-*")):
        assert proc.poll() is None, "the run ended before its crawl started"
        assert time.monotonic() < deadline, "the crawl never started"
        time.sleep(0.05)
    time.sleep(0.5)
    tree = descendants(proc.pid)
    assert any("scrapy crawl" in cmd for cmd in tree.values()), f"not crawling: {tree}"
    assert any("carprice.market.server" in cmd for cmd in tree.values()), f"no marketplace: {tree}"
    return tree


def marketplace_port(tree: dict[int, str]) -> int:
    [crawl] = [cmd for cmd in tree.values() if "scrapy crawl" in cmd]
    return int(re.search(r'start_urls=\["http://127\.0\.0\.1:(\d+)/', crawl).group(1))


def listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_a_run_stopped_during_its_crawl_leaves_no_process_and_no_batch_behind(tmp_path, sig):
    data, log = tmp_path / "data", tmp_path / "run.log"
    with log.open("w") as out:
        proc = subprocess.Popen(run_command(data), env=env(), stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    tree = {}
    try:
        tree = crawling(proc, data)
        os.kill(proc.pid, sig)  # the parent only, not its process group
        proc.wait(timeout=60)
        left = still_running(tree, within_s=10)
    finally:
        kill_leftovers(proc, tree)
    assert left == {}, f"outlived the run: {left}"
    assert not listening(marketplace_port(tree)), "the marketplace server is down"
    landed = [p.name for p in data.glob("landing/*/*") if not p.name.startswith(".")]
    assert landed == [], "the crawl cut short landed no batch"
    # Scrapy discards its unfinished folder when it stops; if it could not (a loaded machine), the folder names a
    # writer that is gone, and the next command removes it.
    remove_stale_tmp(data / "landing")
    assert list(data.glob("landing/*/*")) == [], "no unfinished folder outlives the next command"
    if sig == signal.SIGTERM:
        assert proc.returncode == 130 and "carprice: interrupted" in log.read_text()
        # The schedule's tick is recorded as failed, not left started for the daemon to take up.
        instance = dg.DagsterInstance.from_config(str(data / "dagster"))
        origin = RemoteRepositoryOrigin(code_location_origin(), "__repository__")
        selector = InstigatorSelector(location_name="carprice", repository_name="__repository__",
                                      name="crawl_automarkt")
        [tick] = instance.get_ticks(origin.get_instigator_origin("crawl_automarkt").get_id(), selector.get_id())
        assert tick.status == TickStatus.FAILURE


def test_a_crawl_killed_with_its_run_leaves_a_folder_the_next_run_removes(tmp_path):
    data = tmp_path / "data"
    proc = subprocess.Popen(run_command(data), env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    tree = {}
    try:
        tree = crawling(proc, data)
        [scrapy] = [pid for pid, cmd in tree.items() if "scrapy crawl" in cmd]
        # Both killed outright, as the OOM killer or a power cut would: nothing gets to clean up.
        os.kill(scrapy, signal.SIGKILL)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
        left = still_running(tree, within_s=10)
    finally:
        kill_leftovers(proc, tree)
    assert left == {}, f"outlived the run: {left}"
    [unfinished] = data.glob("landing/*/.tmp-*")

    second = subprocess.run(run_command(data), env=env(), capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stdout[-2000:] + second.stderr[-2000:]
    assert f"removed {unfinished}: the unfinished batch of a crawl that is gone" in second.stdout
    assert not list(data.glob("landing/*/.tmp-*")) and len(list(data.glob("landing/*/*"))) == 1
