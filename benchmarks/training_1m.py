"""Training the price model on a million listings: wall time, peak memory, and overhead over bare LightGBM.

    .venv/bin/python benchmarks/training_1m.py [--rows 1000000]

Builds ``--rows`` feature rows (100k simulated listings, repeated with jittered mileage, price and
listing date), stores them as ``listing_features`` in a DuckDB warehouse, then, each in its own
process so peak memory is its own:
  * asset:    materializes the real ``challenger_model`` asset (read from DuckDB, time split, recipe
              selection on a sample, linear base, LightGBM with early stopping, conformal interval, artifact,
              registry; the holdout is scored afterwards by ``champion_model``, beside the champion);
  * baseline: a bare ``lightgbm.train`` on the same training rows and features with the parameters the
              selection chose and the number of rounds the asset ended with.
Prints wall time and peak RSS of each and the ratio asset / baseline (target <= 2, recipe selection included).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd


def build_rows(rows: int, base_listings: int = 100_000) -> pd.DataFrame:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from carprice.training.features import build_features
    from carprice_tests.conftest import clean_frame_from_market

    base = build_features(clean_frame_from_market(base_listings, seed=7, day=0))
    rng = np.random.default_rng(0)
    copies = []
    for k in range(int(np.ceil(rows / len(base)))):
        copy = base.copy()
        jitter = rng.lognormal(0, 0.05, len(copy))
        copy["url"] = copy["url"] + f"?copy={k}"
        copy["mileage_km"] = copy["mileage_km"] * rng.lognormal(0, 0.05, len(copy))
        copy["km_per_year"] = copy["mileage_km"] / copy["age_years"]
        copy["market_price"] = copy["market_price"] * jitter
        copy["log_price"] = np.log(copy["market_price"])
        copy["listed_at"] = copy["listed_at"] - pd.to_timedelta(rng.integers(0, 60, len(copy)), unit="D")
        copies.append(copy)
    return pd.concat(copies, ignore_index=True).head(rows)


def child_asset(data_dir: Path) -> dict:
    import dagster as dg

    from carprice.config import Settings
    from carprice.defs.resources import build_resources
    from carprice.defs.training import challenger_model
    from carprice.warehouse import Warehouse

    settings = Settings(data_dir=data_dir, dagster_home=data_dir / "home")
    started = time.perf_counter()
    result = dg.materialize([challenger_model], resources=build_resources(settings))
    seconds = time.perf_counter() - started
    meta = result.asset_materializations_for_node("challenger_model")[0].metadata
    params = json.loads(Warehouse(settings.warehouse_path).query("SELECT params FROM model_registry").iloc[0, 0])
    search = params.get("recipe_selection", {})
    return {"seconds": seconds, "rounds": params["num_boost_round"], "n_train": meta["n_train"].value,
            "search_seconds": search.get("seconds", 0.0), "searched_rows": search.get("searched_rows", 0),
            "chosen": {k: v for k, v in search.get("chosen", {}).items() if k not in ("num_threads",)}}


def child_baseline(data_dir: Path, rounds: int) -> dict:
    """A bare ``lightgbm.train`` with the recipe the asset chose, on its training rows and features."""
    import lightgbm as lgb

    from carprice.config import PromotionConfig
    from carprice.training import modeling
    from carprice.training.splitting import holdout_share, split_holdout
    from carprice.warehouse import Warehouse

    wh = Warehouse(data_dir / "warehouse.duckdb")
    params, features = (json.loads(v) for v in wh.query("SELECT params, features FROM model_registry").iloc[0])
    data = wh.query("SELECT * FROM listing_features ORDER BY listed_at, url")
    promotion = PromotionConfig()
    train, _, _ = split_holdout(data, holdout_share(data, promotion.holdout_fraction, promotion.holdout_days,
                                                    promotion.holdout_min_rows))
    categories = modeling.category_levels(train, features)
    X = modeling.to_matrix(train, features, categories)
    data = lgb.Dataset(X, label=train["log_price"], categorical_feature=list(categories))
    started = time.perf_counter()
    lgb.train(modeling.booster_params(params), data, num_boost_round=rounds)
    return {"seconds": time.perf_counter() - started, "n_train": len(train)}


def run_child(kind: str, data_dir: Path, *extra: str) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--child", kind, "--data-dir", str(data_dir), *extra],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{kind} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--child", choices=["asset", "baseline"])
    parser.add_argument("--data-dir")
    parser.add_argument("--rounds", type=int)
    args = parser.parse_args()
    if args.child:
        out = child_asset(Path(args.data_dir)) if args.child == "asset" else child_baseline(Path(args.data_dir),
                                                                                          args.rounds)
        out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(out))
        return
    from carprice.warehouse import Warehouse

    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        started = time.perf_counter()
        rows = build_rows(args.rows)
        wh = Warehouse(data_dir / "warehouse.duckdb")
        wh.replace_table("listing_features", rows)
        # Training reads the features of listings that are not reposts.
        wh.replace_table("clean_listings", pd.DataFrame({"url": rows["url"], "repost_of": pd.Series(
            [None] * len(rows), dtype="string")}))
        print(f"built {len(rows):,} feature rows in {time.perf_counter() - started:.0f} s", flush=True)
        del rows
        asset = run_child("asset", data_dir)
        baseline = run_child("baseline", data_dir, "--rounds", str(asset["rounds"]))
    print(f"challenger_model asset  {asset['seconds']:8.1f} s  peak {asset['peak_rss_mb']:,.0f} MB  "
          f"({asset['n_train']:,} training rows, {asset['rounds']} rounds; recipe search "
          f"{asset['search_seconds']:.0f} s on {asset['searched_rows']:,} rows chose {asset['chosen']})")
    print(f"bare lightgbm.train     {baseline['seconds']:8.1f} s  peak {baseline['peak_rss_mb']:,.0f} MB  "
          f"(the chosen recipe's parameters and rounds, {baseline['n_train']:,} rows)")
    print(f"ratio asset/bare        {asset['seconds'] / baseline['seconds']:8.2f}   (target <= 2: selection, early "
          "stopping, linear base, interval, artifact and registry included)")


if __name__ == "__main__":
    main()
