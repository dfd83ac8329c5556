"""`carprice ui` for real: the Dagster webserver (dg dev) and the report server come up on loopback, load the
project's definitions for the named data folder, and stop on a signal."""

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


def test_carprice_ui_serves_the_definitions_and_the_reports(tmp_path):
    port = free_port()
    data = tmp_path / "data"
    (data / "reports" / "b1").mkdir(parents=True)
    (data / "reports" / "b1" / "drift.html").write_text("<html>drift report</html>")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARPRICE_") and k != "DAGSTER_HOME"}
    proc = subprocess.Popen([str(Path(sys.executable).with_name("carprice")), "ui", "--port", str(port),
                             "--data-dir", str(data)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    try:
        wait_for(f"http://127.0.0.1:{port}/server_info", proc, 180)
        query = '{"query": "{ assetNodes { assetKey { path } } }"}'
        deadline = time.monotonic() + 120
        while True:  # the code location loads after the webserver answers
            request = urllib.request.Request(f"http://127.0.0.1:{port}/graphql", data=query.encode(),
                                             headers={"Content-Type": "application/json"})
            nodes = json.loads(urllib.request.urlopen(request, timeout=10).read())["data"]["assetNodes"]
            if nodes or time.monotonic() > deadline:
                break
            time.sleep(2)
        assert {n["assetKey"]["path"][0] for n in nodes} >= {"raw_listings", "champion_model", "warehouse_snapshot"}
        assert get(f"http://127.0.0.1:{port + 1}/b1/drift.html") == b"<html>drift report</html>"
        assert (data / "dagster" / "dagster.yaml").exists(), "the data folder's own Dagster instance"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            output = proc.communicate(timeout=60)[0]
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            output = proc.communicate()[0]
    assert f"UI on http://127.0.0.1:{port}" in output
