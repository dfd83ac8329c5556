"""The demo's market shift, day by day: MAPE on each day's new listings of the model trained on what came before,
before and after training learned about time.

    .venv/bin/python benchmarks/recency.py [--days 10] [--listings 3000]

Builds the listings a daily crawl of the demo's simulated market gathers (3,000 active listings, SUV asking prices
up 40% from three tenths in, as ``carprice run --demo`` sets it), then for each day from the shift on trains two
challengers on every listing seen before that day, as ``challenger_model`` does (holdout for the judgement, recipe
chosen on the rest, refit): *before*, the newest fifth held out and candidates without a notion of time; *after*,
at most the newest ``PromotionConfig.holdout_days`` held out and every candidate (listing date as a feature,
recency weights). Each values the day's new listings. Prints both MAPE curves, overall and on SUVs, the mean
ratio after/before, and the recipe chosen each day.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from carprice.config import PromotionConfig
from carprice.market.generator import Market, MarketConfig
from carprice.market.pages import description_of, title_of
from carprice.market.shifts import MarketShift
from carprice.training import recipe
from carprice.training.features import build_features
from carprice.training.splitting import holdout_share, split_holdout


def crawled(market: Market, first: int, last: int) -> pd.DataFrame:
    """Every listing a daily crawl from ``first`` to ``last`` saw, at the price it last saw (absurd prices left out,
    as cleaning does); ``seen_day`` is the day it was first crawled."""
    rows = {}
    for day in range(first, last + 1):
        for lst in market.listings_on(day):
            if lst.absurd_price:
                continue
            car = lst.car
            listed = market.date_of(lst.listed_day).isoformat()
            seen = rows.get(lst.path, {}).get("seen_day", day)
            rows[lst.path] = dict(
                listing_key=f"market:{lst.path}", url=f"http://x{lst.path}", title=title_of(lst),
                description=description_of(lst), make=car.spec.make, model=car.spec.model,
                model_year=car.model_year, first_registration=car.first_registration.isoformat(),
                mileage_km=float(car.mileage_km), fuel=car.fuel, transmission=car.transmission, body=car.spec.body,
                power_kw=float(car.power_kw), color=car.color, doors=car.doors, condition=car.condition,
                market_price=round(lst.price_on(day)), seller_type=lst.seller_type, region=lst.region,
                listed_at=listed, listed_at_stated=True, first_seen_at=f"{market.date_of(day)}T06:00:00+00:00",
                seen_day=seen, listed_day=lst.listed_day)
    frame = pd.DataFrame(list(rows.values()))
    features = build_features(frame)
    features["seen_day"], features["listed_day"] = frame["seen_day"].to_numpy(), frame["listed_day"].to_numpy()
    return features


def mape(model, rows: pd.DataFrame) -> float:
    return float(np.mean(np.abs(model.predict_price(rows) / rows["market_price"] - 1)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=10)
    parser.add_argument("--listings", type=int, default=3000)
    args = parser.parse_args()
    first, last = -args.days + 1, 0
    shift_day = first + max(2, args.days * 3 // 10)
    shift = MarketShift("suv", 1.4, start_day=shift_day, ramp_days=0)
    market = Market(MarketConfig.for_active_listings(args.listings, seed=7, shifts=(shift,)))
    seen = crawled(market, first, last)
    promotion = PromotionConfig()
    timeless = tuple(c for c in recipe.CANDIDATES if not recipe.uses_time(c))
    print(f"{len(seen):,} listings seen over {args.days} days; SUV prices +40% from day {shift_day - first + 1}")
    print("before: the newest fifth held out, no notion of time; after: at most the newest "
          f"{promotion.holdout_days} days held out ({promotion.holdout_min_rows}+ rows), time-aware candidates")
    print(f"{'day':>4} {'new':>4} {'held out':>13} {'MAPE before':>12} {'after':>6} {'SUV before':>11} "
          f"{'after':>6}  chosen after")
    curves = []
    for day in range(shift_day, last + 1):
        known = seen[seen["seen_day"] < day].drop(columns=["seen_day", "listed_day"])
        new = seen[seen["listed_day"] == day]
        old_train, old_held, _ = split_holdout(known, promotion.holdout_fraction)
        share = holdout_share(known, promotion.holdout_fraction, promotion.holdout_days, promotion.holdout_min_rows)
        train, held, _ = split_holdout(known, share)
        before = recipe.select_recipe(old_train, candidates=timeless).model
        chosen = recipe.select_recipe(train)
        suv = new["body"] == "suv"
        row = (mape(before, new), mape(chosen.model, new), mape(before, new[suv]), mape(chosen.model, new[suv]))
        curves.append(row)
        picked = {k: v for k, v in chosen.params.items() if k in ("time_feature", "recency_half_life_days",
                                                                  "linear_base", "num_leaves", "extra_trees")}
        print(f"{day - first + 1:>4} {len(new):>4} {len(old_held):>6}->{len(held):>5} {row[0]:>12.1%} {row[1]:>6.1%} "
              f"{row[2]:>11.1%} {row[3]:>6.1%}  {picked or 'default'}", flush=True)
    mean = np.mean(curves, axis=0)
    print(f"mean after the shift: MAPE {mean[0]:.1%} before, {mean[1]:.1%} after (ratio {mean[1] / mean[0]:.2f}); "
          f"SUVs {mean[2]:.1%} -> {mean[3]:.1%} (ratio {mean[3] / mean[2]:.2f})")


if __name__ == "__main__":
    main()
