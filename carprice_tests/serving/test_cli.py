"""`carprice serve` for real: it listens on loopback, serves the installation's champion, and stops on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx
import pytest

from carprice_tests.serving.conftest import build_installation, train_and_promote

pytestmark = pytest.mark.integration


def test_carprice_serve_answers_on_loopback_and_stops_on_sigterm(tmp_path):
    inst = build_installation(tmp_path)
    version = train_and_promote(inst)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARPRICE_") and k != "DAGSTER_HOME"}
    proc = subprocess.Popen([sys.executable, "-m", "carprice.cli", "serve", "--data-dir", str(inst.settings.data_dir),
                             "--port", "0"], env={**env, "PYTHONUNBUFFERED": "1"}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("serving http://127.0.0.1:"), line + proc.stderr.read()
        url = line.split()[1]
        deadline = time.monotonic() + 60
        while True:
            try:
                ready = httpx.get(f"{url}/api/v1/readyz")
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline
                time.sleep(0.1)
        assert ready.status_code == 200 and ready.json()["model_version"] == version
        assert httpx.get(f"{url}/docs").status_code == 200
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
