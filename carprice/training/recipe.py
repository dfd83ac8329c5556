"""Choose each challenger's recipe on the installation's own data: a small search around the default.

A fixed grid of recipes (with or without the linear base, tree size, leaf size, regularization) is tried in
order on the same training rows, each with early stopping on the same validation fold (the newest tenth when
dates allow); the recipe with the lowest validation MAE wins. A grid rather than Optuna's LightGBM tuner: it is
deterministic, bounded in time, needs no new dependency, and every trial is recorded with the model. Large
data is searched on a seeded sample and the chosen recipe refit on everything, so selection costs at most
``budget_s`` beyond one fit.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import pandas as pd

from carprice.training import modeling
from carprice.training.splitting import GROUPED_RANDOM

# Tried in this order; the first is the default recipe, so it is always among the trials.
CANDIDATES: tuple[dict, ...] = (
    {},
    {"linear_base": False, "num_leaves": 31, "min_data_in_leaf": 20},
    {"num_leaves": 7, "min_data_in_leaf": 20, "lambda_l2": 5.0},
    {"num_leaves": 31, "min_data_in_leaf": 20},
    # Randomized split points: strong regularization for small data sets, where exact splits overfit the noise.
    {"extra_trees": True, "num_leaves": 7},
    # A notion of time, tried only on data with a time order: the listing date as a feature (the trees can tell
    # prices before and after a change), and the same with recent listings weighted up.
    {"time_feature": True},
    {"time_feature": True, "recency_half_life_days": 30},
)
TIME_PARAMS = ("time_feature", "recency_half_life_days")
# Above this many rows the search runs on a seeded sample of them, and it stops starting trials after this many
# seconds: on a million listings the search then costs less than a third of the final fit
# (benchmarks/training_1m.py), so a challenger stays within twice a bare fit of the recipe it chose.
SEARCH_ROWS = 20_000
SEARCH_BUDGET_S = 60.0


@dataclass
class RecipeChoice:
    """The chosen parameters, every trial with its validation scores, and the model when it can be kept."""

    params: dict
    trials: list[dict] = field(default_factory=list)
    searched_rows: int = 0
    seconds: float = 0.0
    model: modeling.PriceModel | None = None  # the winner's model, when it was trained on all the rows

    def summary(self) -> dict:
        return {"chosen": self.params, "trials": self.trials, "searched_rows": self.searched_rows,
                "seconds": round(self.seconds, 1)}


def uses_time(candidate: dict) -> bool:
    """Whether a candidate recipe uses the listing dates (a time feature or recency weights)."""
    return any(candidate.get(k) for k in TIME_PARAMS)


def select_recipe(train: pd.DataFrame, base_params: dict | None = None, *, budget_s: float = SEARCH_BUDGET_S,
                  search_rows: int = SEARCH_ROWS, candidates: tuple[dict, ...] = CANDIDATES,
                  seed: int = 7) -> RecipeChoice:
    """Try ``candidates`` on ``base_params`` (in order, until ``budget_s`` is spent) and keep the best by
    validation MAE in the market currency."""
    started = time.perf_counter()
    sample = train if len(train) <= search_rows else train.sample(search_rows, random_state=seed)
    best, choice = None, RecipeChoice(params={}, searched_rows=len(sample))
    for i, candidate in enumerate(candidates):
        if i and time.perf_counter() - started > budget_s:
            break
        if uses_time(candidate) and best is not None and best[2].early_stopping_split["kind"] == GROUPED_RANDOM:
            continue  # no time order in the data: nothing for a notion of time to learn
        params = {**(base_params or {}), **candidate}
        # The winner alone is refit on every row (below).
        model = modeling.train_model(sample, params, refit=False)
        trial = {"params": candidate or "default", "validation_mae": round(model.validation["mae"], 1),
                 "validation_median_ape": round(model.validation["median_ape"], 4),
                 "rounds": model.params["num_boost_round"]}
        choice.trials.append(trial)
        if best is None or trial["validation_mae"] < best[0]:
            best = (trial["validation_mae"], params, model)
    choice.params, model = best[1], best[2]
    if sample is train:
        choice.model = modeling.refit_model(model, train) if modeling.needs_refit(model, len(train)) else model
    choice.seconds = time.perf_counter() - started
    return choice
