"""Fault injection: a real `carprice run` SIGKILLed at each stage, then the next day's run; nothing may be lost.

Each stage runs in its own data folder; three scenarios run at a time (each is mostly waiting on its own
processes). After the restart: it finished, every landed batch has a status and its rows once, no run or
pool slot is left behind, exactly one champion whose artifact loads, and the snapshot opens.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from carprice_tests.runs.faults import STAGES, kill_and_restart

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_a_run_killed_at_any_stage_is_recovered_by_the_next(tmp_path):
    with ThreadPoolExecutor(max_workers=3) as pool:
        outcomes = dict(zip(STAGES, pool.map(lambda stage: kill_and_restart(tmp_path, stage), STAGES)))
    failures = {stage: (kill, done.problems, done.output[-1500:]) for stage, (kill, done) in outcomes.items()
                if done.problems}
    assert not failures, failures
    for stage, (kill, done) in outcomes.items():
        if STAGES[stage]:
            # The killed run was found dead at the restart's start, failed, and its warehouse slot freed.
            assert f"run {kill.run_id[:8]} was left unfinished by a process that is gone" in done.output, stage
