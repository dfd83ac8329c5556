"""`carprice batches list --status unfinished` and `carprice batches retry`: a landed batch without a status is
shown, with its runs so far, and processed again on request; nothing else is retried."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from carprice.config import Settings
from carprice_tests.conftest import copy_batch

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def carprice(settings: Settings, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARPRICE_") and k != "DAGSTER_HOME"}
    return subprocess.run([str(Path(sys.executable).with_name("carprice")), *args], capture_output=True, text=True,
                          env={**env, **settings.to_env()}, timeout=600)


def test_an_unfinished_batch_is_listed_and_retried_once(settings, crawled_batch):
    batch = copy_batch(crawled_batch, settings.landing_dir)
    broken = settings.landing_dir / batch.source / "broken_batch"
    broken.mkdir()
    (broken / "manifest.json").write_text("{not json")

    listed = carprice(settings, "batches", "list", "--status", "unfinished")
    assert listed.returncode == 0, listed.stderr
    assert f"{batch.batch_id}  unfinished" in listed.stdout and "runs: never run" in listed.stdout
    assert f"carprice batches retry {batch.batch_id}" in listed.stdout
    assert "broken_batch  unreadable" in listed.stdout and "not valid JSON" in listed.stdout

    retried = carprice(settings, "batches", "retry", batch.batch_id)
    assert retried.returncode == 0, retried.stdout[-2000:] + retried.stderr[-2000:]
    assert "batch accepted" in retried.stdout

    after = carprice(settings, "batches", "list")
    assert f"{batch.batch_id}  accepted" in after.stdout and f"{batch.batch_id}  unfinished" not in after.stdout
    again = carprice(settings, "batches", "retry", batch.batch_id)
    assert again.returncode == 2 and f"batch {batch.batch_id} is already accepted: nothing to retry" in again.stderr
    unknown = carprice(settings, "batches", "retry", "no_such_batch")
    assert unknown.returncode == 2 and "no batch 'no_such_batch'" in unknown.stderr
    hostile = carprice(settings, "batches", "retry", "../../etc")
    assert hostile.returncode == 2 and "batch id" in hostile.stderr
