"""Hot reload through the real server: promotions are served within seconds while requests keep arriving, and
not one request fails."""

from __future__ import annotations

import threading
import time
from collections import Counter

import httpx
import pytest

from carprice.serving.server import running_api
from carprice_tests.serving.conftest import build_installation, train_and_promote
from carprice_tests.serving.test_api import common_car

pytestmark = pytest.mark.integration


def wait_for(check, timeout_s: float = 30.0) -> float:
    """Seconds until ``check()`` is true; fails the test after ``timeout_s``."""
    start = time.monotonic()
    while not check():
        assert time.monotonic() - start < timeout_s, "timed out"
        time.sleep(0.05)
    return time.monotonic() - start


def test_promotions_are_served_while_requests_arrive_without_one_failing(tmp_path):
    inst = build_installation(tmp_path)
    first = train_and_promote(inst)
    car = common_car(inst)
    failures, versions, stop = [], Counter(), threading.Event()

    def send() -> None:
        with httpx.Client(base_url=url, timeout=30) as client:
            while not stop.is_set():
                try:
                    answer = client.post("/api/v1/valuations", json=car)
                except httpx.HTTPError as exc:
                    failures.append(repr(exc))
                    continue
                if answer.status_code != 200 or answer.json()["model_version"] != answer.headers["X-Model-Version"]:
                    failures.append(f"{answer.status_code} {answer.text[:200]}")
                else:
                    versions[answer.headers["X-Model-Version"]] += 1

    with running_api(inst.settings, poll_interval_s=0.2) as url:
        wait_for(lambda: httpx.get(f"{url}/api/v1/readyz").status_code == 200)
        senders = [threading.Thread(target=send) for _ in range(2)]
        for sender in senders:
            sender.start()
        promoted = []
        try:
            for params in ({"num_leaves": 7}, {"num_leaves": 5}):
                promoted.append(train_and_promote(inst, params))
                assert wait_for(lambda: promoted[-1] in versions) < 10
        finally:
            stop.set()
            for sender in senders:
                sender.join()
    assert failures == []
    assert set(versions) == {first, *promoted} and sum(versions.values()) > 20
