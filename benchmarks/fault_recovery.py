"""Recovery after a kill: a `carprice run` SIGKILLed at each stage, then the next day's run, timed.

    .venv/bin/python benchmarks/fault_recovery.py [--stages ingest,judge]

Baseline, measured in the same run: the next day's run after an uninterrupted day (same market, same
folder layout). For each stage: whether the kill landed inside the step, the restart's time to a finished
run and its ratio to the baseline (the price of recovering: the killed batch is processed again, a first
model trained again), and the invariant checks of the fault-injection tier (``carprice_tests/runs/faults.py``).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from carprice_tests.runs.faults import FIRST_DAY, STAGES, carprice_cmd, clean_env, kill_at, restart


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stages", default=",".join(STAGES), help="comma-separated stages (default: all)")
    stages = parser.parse_args().stages.split(",")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        subprocess.run(carprice_cmd(root / "baseline", FIRST_DAY), env=clean_env(), check=True, capture_output=True)
        baseline = restart(root / "baseline")
        print(f"baseline: the next day's run after an uninterrupted day: {baseline.seconds:.1f} s"
              + (f"; PROBLEMS: {baseline.problems}" if baseline.problems else ""))
        print(f"{'stage':<9} {'killed':<12} {'restart s':>9} {'ratio':>6}  invariants")
        survived = 0
        for stage in stages:
            kill = kill_at(root / stage, stage)
            done = restart(root / stage)
            survived += not done.problems
            where = "mid-step" if kill.mid_step else ("in crawl" if STAGES[stage] is None else "after step")
            print(f"{stage:<9} {where:<12} {done.seconds:>9.1f} {done.seconds / baseline.seconds:>6.2f}  "
                  + ("all hold" if not done.problems else "; ".join(done.problems)), flush=True)
        print(f"kills survived: {survived} of {len(stages)}")


if __name__ == "__main__":
    main()
