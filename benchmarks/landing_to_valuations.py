"""Latency from a batch landing to its valuations and monitoring reports, through the real Dagster daemon.

    .venv/bin/python benchmarks/landing_to_valuations.py [--warehouse-listings 200000] [--batch-listings 10000]

Setup (not timed): a warehouse holding one admitted batch of ``--warehouse-listings`` listings and a champion
trained on it (refresh_job), on a persistent Dagster instance in a temporary folder. Batches are rendered and
parsed by the spider's own code in process (no HTTP) to keep the setup short.

Measured, each with a fresh ``--batch-listings`` batch of the next market day:
- baseline: batch_job executed in process for a batch (ingest, checks, clean, features, valuations, Evidently
  monitoring, snapshot), with no sensor and no run launch;
- automated: ``dagster-daemon run`` is running; a batch folder appears in the landing zone (atomic rename) and
  the clock stops when the landing sensor's batch_job run has materialized valuations and the monitoring
  report. The landing sensor's interval (15 s) is included: the batch lands at a random moment of it.
Target: automated <= 60 s on 2 cores. The ratio automated/baseline is the cost of the automation itself.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import dagster as dg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from validation_speed import land_day

from carprice.config import PROJECT_DIR, Settings
from carprice.ingest.landing import read_batch
from carprice.market.generator import Market, MarketConfig
from carprice.runs.launcher import Automation
from carprice.warehouse import Warehouse


def land_atomically(market: Market, day: int, landing: Path) -> str:
    """Write a batch aside, then move it into the landing zone in one rename, as the spider does."""
    staging = landing.parent / "staging"
    batch = read_batch(land_day(market, day, staging))
    target = landing / batch.source / batch.batch_id
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(batch.path, target)
    return batch.batch_id


def step_seconds(instance: dg.DagsterInstance, run_id: str) -> str:
    """Each step's duration in a run, in order."""
    stats = sorted(instance.get_run_step_stats(run_id), key=lambda s: s.start_time or 0)
    return ", ".join(f"{s.step_key} {s.end_time - s.start_time:.1f}" for s in stats if s.end_time and s.start_time)


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.25)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warehouse-listings", type=int, default=200_000)
    parser.add_argument("--batch-listings", type=int, default=10_000)
    parser.add_argument("--day", type=int, default=60)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        settings = Settings(data_dir=root / "data", dagster_home=root / "home", market_day=args.day,
                            market_listings=args.batch_listings)
        automation = Automation(settings, progress=lambda _: None)
        instance = automation.instance

        started = time.perf_counter()
        big = Market(MarketConfig.for_active_listings(args.warehouse_listings, seed=7))
        first = land_atomically(big, args.day, settings.landing_dir)
        print(f"setup: landed {args.warehouse_listings:,}-listing batch in {time.perf_counter() - started:.0f} s",
              flush=True)
        for run in automation.tick_sensor("landing_sensor") + automation.tick_sensor("retraining_sensor"):
            assert run.result.success, f"setup run {run.job} failed"
        wh = Warehouse(settings.warehouse_path)
        listings = int(wh.query("SELECT count(*) AS n FROM clean_listings").iloc[0]["n"])
        print(f"setup: {first} admitted, champion trained; warehouse holds {listings:,} clean listings "
              f"({time.perf_counter() - started:.0f} s)", flush=True)

        small = Market(MarketConfig.for_active_listings(args.batch_listings, seed=7))
        baseline_batch = land_atomically(small, args.day + 1, settings.landing_dir)
        (run,) = automation.tick_sensor("landing_sensor")
        assert run.result.success, "baseline batch_job failed"
        baseline_s = run.seconds
        status = wh.query("SELECT status FROM batch_status WHERE batch_id = ?", [baseline_batch]).iloc[0, 0]
        print(f"baseline: batch_job in process for {baseline_batch} ({status}): {baseline_s:.1f} s", flush=True)
        print(f"  steps (s): {step_seconds(instance, run.result.run_id)}", flush=True)

        daemon_settings = dataclasses.replace(settings, market_day=args.day, market_listings=args.batch_listings)
        env = {**os.environ, **daemon_settings.to_env()}
        log = (root / "daemon.log").open("w")
        daemon = subprocess.Popen([str(Path(sys.executable).with_name("dagster-daemon")), "run", "-w",
                                   str(PROJECT_DIR / "workspace.yaml")], cwd=PROJECT_DIR, env=env, stdout=log,
                                  stderr=subprocess.STDOUT, start_new_session=True)
        try:
            wait_for(lambda: any(h.daemon_type == "SENSOR" for h in instance.get_daemon_heartbeats().values()),
                     120, "the daemon's sensor loop")
            time.sleep(15 + random.uniform(0, 15))  # past the first tick, then a random moment of the interval
            staged = Market(MarketConfig.for_active_listings(args.batch_listings, seed=7))
            staging = root / "staged"
            batch = read_batch(land_day(staged, args.day + 2, staging))
            target = settings.landing_dir / batch.source / batch.batch_id
            landed = time.time()
            os.replace(batch.path, target)

            def materialized(asset: str):
                records = instance.fetch_materializations(
                    dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), after_timestamp=landed), limit=1).records
                return records[0] if records else None

            monitoring = wait_for(lambda: materialized("batch_monitoring"), 600, "the monitoring report")
            valuations = materialized("listing_valuations")
            done = max(monitoring.timestamp, valuations.timestamp)
            run = instance.get_run_by_id(monitoring.run_id)
            stats = instance.get_run_stats(monitoring.run_id)
        finally:
            os.killpg(daemon.pid, signal.SIGTERM)
            daemon.wait(timeout=60)
            log.close()
        latency = done - landed
        print(f"automated: {batch.batch_id} landed -> valuations and reports by {run.tags['dagster/sensor_name']} "
              f"run {run.run_id[:8]}", flush=True)
        print(f"  waiting for the sensor and the run to start {stats.start_time - landed:6.1f} s")
        print(f"  run until valuations + reports             {done - stats.start_time:6.1f} s")
        print(f"  landing -> valuations + reports             {latency:6.1f} s   (target <= 60 s)")
        print(f"  steps (s): {step_seconds(instance, run.run_id)}")
        print(f"ratio automated/in-process baseline           {latency / baseline_s:6.2f}")


if __name__ == "__main__":
    main()
