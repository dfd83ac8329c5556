"""Kill a real `carprice run` at a chosen stage, restart, and check what must hold afterwards.

Shared by the fault-injection tier (``test_fault_injection.py``) and its benchmark
(``benchmarks/fault_recovery.py``). A stage is recognised from outside, the way an operator would see it:
by the run's own events in the Dagster instance (a step starting, a check evaluated) or, for the crawl,
by the batch folder being written. The whole process group is then SIGKILLed, as a power cut would.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
import duckdb

from carprice.training.modeling import ModelArtifactError, load_model

MARKET = ["--listings", "500", "--seed", "3"]
FIRST_DAY = 40

STEP_START, CHECK = dg.DagsterEventType.STEP_START, dg.DagsterEventType.ASSET_CHECK_EVALUATION
# Stage -> (step, the event that means the step is under way). The checks run inside the raw_listings step:
# their evaluation event comes after the verdict is stored and before the step ends.
STAGES: dict[str, tuple[str, dg.DagsterEventType] | None] = {
    "crawl": None,
    "ingest": ("raw_listings", STEP_START),
    "checks": ("raw_listings", CHECK),
    "clean": ("clean_listings", STEP_START),
    "train": ("challenger_model", STEP_START),
    "judge": ("champion_model", STEP_START),
    "value": ("listing_valuations", STEP_START),
    "monitor": ("batch_monitoring", STEP_START),
    "publish": ("warehouse_snapshot", STEP_START),
}


def carprice_cmd(data: Path, day: int) -> list[str]:
    return [str(Path(sys.executable).with_name("carprice")), "run", "--data-dir", str(data), *MARKET,
            "--day", str(day)]


def clean_env() -> dict[str, str]:
    """The environment without this machine's carprice settings: the data folder decides everything."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARPRICE_") and k != "DAGSTER_HOME"}
    # Scenarios run side by side on few cores: LightGBM's OpenMP threads must sleep, not spin, while they wait.
    return {**env, "OMP_WAIT_POLICY": "PASSIVE"}


@dataclass
class Kill:
    """Where a run was killed: the stage, whether the step was still under way, the run it was in."""

    stage: str
    run_id: str | None = None
    mid_step: bool = False


def _crawling(data: Path) -> bool:
    return any(p.name.startswith(".tmp-") for p in data.glob("landing/*/*"))


def _stage_reached(instance: dg.DagsterInstance, step: str, event: dg.DagsterEventType) -> str | None:
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED])):
        if any(e.step_key == step for e in instance.all_logs(run.run_id, of_type=event)):
            return run.run_id
    return None


def kill_at(data: Path, stage: str, day: int = FIRST_DAY, timeout_s: float = 300) -> Kill:
    """Start `carprice run` on a fresh ``data`` folder and SIGKILL its process group once ``stage`` is reached."""
    proc = subprocess.Popen(carprice_cmd(data, day), env=clean_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    kill, instance, deadline = Kill(stage), None, time.monotonic() + timeout_s
    try:
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"the run ended (exit {proc.returncode}) before reaching stage {stage}")
            if time.monotonic() > deadline:
                raise AssertionError(f"stage {stage} not reached in {timeout_s} s")
            if STAGES[stage] is None:
                if _crawling(data):
                    break
            else:
                # Opened once a batch has landed: the run has set up the instance's storage by then (opening it
                # while the command creates its tables would race it).
                if instance is None and any(not p.name.startswith(".") for p in data.glob("landing/*/*")):
                    instance = dg.DagsterInstance.from_config(str(data / "dagster"))
                if instance is not None and (run_id := _stage_reached(instance, *STAGES[stage])):
                    kill.run_id = run_id
                    break
            time.sleep(0.02)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    if kill.run_id:
        step = STAGES[stage][0]
        kill.mid_step = not any(e.step_key == step for e in instance.all_logs(
            kill.run_id, of_type=dg.DagsterEventType.STEP_SUCCESS))
    return kill


@dataclass
class Restart:
    """The run after a kill: how it ended, how long it took, and what its output said."""

    returncode: int
    seconds: float
    output: str
    problems: list[str] = field(default_factory=list)


def restart(data: Path, day: int = FIRST_DAY + 1) -> Restart:
    """Run the next market day on ``data`` to the end, then check the invariants."""
    started = time.monotonic()
    proc = subprocess.run(carprice_cmd(data, day), env=clean_env(), capture_output=True, text=True, timeout=600)
    done = Restart(proc.returncode, time.monotonic() - started, proc.stdout[-3000:] + proc.stderr[-3000:])
    if proc.returncode != 0:
        done.problems.append(f"the restarted run exited {proc.returncode}")
    done.problems += invariant_problems(data)
    return done


def invariant_problems(data: Path) -> list[str]:
    """What is wrong with ``data`` after a finished run: every landed batch has a status and all its rows once,
    no unfinished run or half-written folder is left, exactly one champion whose artifact loads, and the
    analysts' snapshot opens with the same verdicts."""
    problems = []
    landed = {p.name: json.loads((p / "manifest.json").read_text()) for p in data.glob("landing/*/*")
              if not p.name.startswith(".")}
    if leftovers := [p.name for p in data.glob("landing/*/.tmp-*")]:
        problems.append(f"half-written batch folders left: {leftovers}")
    if not (data / "warehouse.duckdb").exists():
        return [*problems, "no warehouse"]
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        statuses = dict(con.execute("SELECT batch_id, status FROM batch_status").fetchall())
        rows = dict(con.execute("SELECT batch_id, count(*) FROM raw_listings GROUP BY batch_id").fetchall())
        champions = con.execute("SELECT artifact_path, sha256 FROM model_registry WHERE status = 'champion'").fetchall()
        dup_clean = con.execute("SELECT count(*) - count(DISTINCT listing_key) FROM clean_listings").fetchone()[0]
        dup_valued = con.execute("SELECT count(*) - count(DISTINCT url) FROM listing_valuations").fetchone()[0]
    if missing := sorted(set(landed) - set(statuses)):
        problems.append(f"landed batches without a status (lost): {missing}")
    for batch_id, manifest in landed.items():
        if rows.get(batch_id, 0) != manifest["counts"]["listings"]:
            problems.append(f"batch {batch_id}: {rows.get(batch_id, 0)} raw rows, manifest says "
                            f"{manifest['counts']['listings']}")
    if dup_clean or dup_valued:
        problems.append(f"duplicate rows: {dup_clean} in clean_listings, {dup_valued} in listing_valuations")
    if len(champions) != 1:
        problems.append(f"{len(champions)} champions")
    for path, sha in champions:
        try:
            load_model(Path(path), expected_sha256=sha)
        except ModelArtifactError as exc:
            problems.append(f"the champion's artifact does not load: {exc}")
    try:
        with duckdb.connect(str(data / "warehouse-snapshot.duckdb"), read_only=True) as con:
            snap = dict(con.execute("SELECT batch_id, status FROM batch_status").fetchall())
        if snap != statuses:
            problems.append(f"the snapshot's verdicts differ from the warehouse's: {snap} vs {statuses}")
    except duckdb.Error as exc:
        problems.append(f"the snapshot does not open: {exc}")
    instance = dg.DagsterInstance.from_config(str(data / "dagster"))
    if unfinished := instance.get_runs(filters=dg.RunsFilter(statuses=[
            dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.NOT_STARTED])):
        problems.append(f"runs left unfinished: {[r.run_id for r in unfinished]}")
    if instance.event_log_storage.get_concurrency_run_ids():
        problems.append("pool slots still held after the run")
    return problems


def kill_and_restart(root: Path, stage: str, on_done: Callable[[str], object] = lambda _: None) -> tuple[Kill,
                                                                                                         Restart]:
    """One scenario in its own folder under ``root``: kill at ``stage``, restart, check."""
    data = root / stage
    kill = kill_at(data, stage)
    done = restart(data)
    on_done(stage)
    return kill, done
