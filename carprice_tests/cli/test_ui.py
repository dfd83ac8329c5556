"""`carprice ui` for real: the Dagster webserver (dg dev), the report server and the price API come up on loopback,
load the project's definitions for the named data folder, and stop, with every process they started, on a signal."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from carprice_tests.conftest import descendants, kill_leftovers, still_running

pytestmark = pytest.mark.integration


def free_port() -> int:
    """A port whose next one is free too (the reports go on port + 1)."""
    for _ in range(50):
        with socket.socket() as a:
            a.bind(("127.0.0.1", 0))
            port = a.getsockname()[1]
        with socket.socket() as b:
            try:
                b.bind(("127.0.0.1", port + 1))
                return port
            except OSError:
                continue
    raise RuntimeError("no two free neighbouring ports")


def free_single_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return resp.read()


def wait_for(url: str, proc: subprocess.Popen, seconds: float) -> bytes:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"carprice ui exited with {proc.returncode}")
        try:
            return get(url)
        except OSError:
            time.sleep(1)
    raise AssertionError(f"{url} did not answer within {seconds} s")


def listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_carprice_ui_serves_the_definitions_and_the_reports_and_stops_with_all_it_started(tmp_path):
    port, api_port = free_port(), free_single_port()
    data = tmp_path / "data"
    (data / "reports" / "b1").mkdir(parents=True)
    (data / "reports" / "b1" / "drift.html").write_text("<html>drift report</html>")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARPRICE_") and k != "DAGSTER_HOME"}
    # Started as a shell starts a command in the background: ignoring SIGINT (Dagster then ignores SIGTERM too).
    log = tmp_path / "ui.log"
    with log.open("w") as out:
        proc = subprocess.Popen([str(Path(sys.executable).with_name("carprice")), "ui", "--port", str(port),
                                 "--api-port", str(api_port), "--data-dir", str(data)], env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    tree = {}
    try:
        wait_for(f"http://127.0.0.1:{port}/server_info", proc, 180)
        query = '{"query": "{ assetNodes { assetKey { path } } shouldShowNux }"}'
        deadline = time.monotonic() + 120
        while True:  # the code location loads after the webserver answers
            request = urllib.request.Request(f"http://127.0.0.1:{port}/graphql", data=query.encode(),
                                             headers={"Content-Type": "application/json"})
            answer = json.loads(urllib.request.urlopen(request, timeout=10).read())["data"]
            nodes = answer["assetNodes"]
            if nodes or time.monotonic() > deadline:
                break
            time.sleep(2)
        assert {n["assetKey"]["path"][0] for n in nodes} >= {"raw_listings", "champion_model", "warehouse_snapshot"}
        assert answer["shouldShowNux"] is False, "no first-visit modal over the lineage page"
        assert get(f"http://127.0.0.1:{port + 1}/b1/drift.html") == b"<html>drift report</html>"
        assert (data / "dagster" / "dagster.yaml").exists(), "the data folder's own Dagster instance"
        # The price API answers, and says why it cannot value yet (nothing published in a new installation).
        health = json.loads(wait_for(f"http://127.0.0.1:{api_port}/api/v1/healthz", proc, 60))
        assert health == {"status": "ok", "model_version": None, "currency": "EUR"}
        tree = descendants(proc.pid)
        assert any(" dev " in cmd for cmd in tree.values()) and any("dagster_webserver" in cmd for cmd in tree.values())
        assert any("carprice.serving.server" in cmd for cmd in tree.values())
        stopped_at = time.monotonic()
        os.kill(proc.pid, signal.SIGTERM)  # the parent only, as a service manager or an operator would
        proc.wait(timeout=60)
        left = still_running(tree, within_s=5)
        took = time.monotonic() - stopped_at
    finally:
        kill_leftovers(proc, tree)
    assert f"UI on http://127.0.0.1:{port}" in log.read_text()
    assert left == {}, f"outlived `carprice ui`: {left}"
    assert not listening(port) and not listening(port + 1) and not listening(api_port), "the ports are free"
    assert proc.returncode == 0 and took < 30, f"exit {proc.returncode} after {took:.0f} s"
