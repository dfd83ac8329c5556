"""Evaluation of price models: slices, baselines, and the rule that decides a promotion.

Pure functions of DataFrames and metric dicts; the champion and the challenger are always scored on
the same rows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from carprice.config import PromotionConfig
from carprice.training.linear import RidgeLogPrice
from carprice.training.modeling import regression_metrics

AGE_BANDS = ((0, 3, "0-3y"), (3, 6, "3-6y"), (6, 10, "6-10y"), (10, math.inf, "10y+"))
PRICE_BANDS = ((0, 5_000, "<5k"), (5_000, 10_000, "5-10k"), (10_000, 20_000, "10-20k"),
               (20_000, 40_000, "20-40k"), (40_000, math.inf, "40k+"))
LOWER_IS_BETTER = {"mae", "median_ape"}


def slice_masks(df: pd.DataFrame, top_makes: int = 10) -> dict[str, pd.Series]:
    """Boolean masks of the slices models are judged on: top makes, age bands, price bands."""
    masks = {}
    for make in df["make"].value_counts().index[:top_makes]:
        masks[f"make={make}"] = df["make"] == make
    for low, high, label in AGE_BANDS:
        masks[f"age={label}"] = (df["age_years"] >= low) & (df["age_years"] < high)
    for low, high, label in PRICE_BANDS:
        masks[f"price={label}"] = (df["market_price"] >= low) & (df["market_price"] < high)
    return masks


def score(df: pd.DataFrame, predicted: np.ndarray, lower: np.ndarray | None = None,
          upper: np.ndarray | None = None) -> dict:
    """Overall and per-slice metrics of predictions for the rows of ``df``."""
    actual = df["market_price"].to_numpy()
    out = {"overall": regression_metrics(actual, predicted, lower, upper), "slices": {}}
    for name, mask in slice_masks(df).items():
        m = mask.to_numpy()
        if m.sum() == 0:
            continue
        low = None if lower is None else lower[m]
        high = None if upper is None else upper[m]
        out["slices"][name] = regression_metrics(actual[m], predicted[m], low, high)
    return out


class MedianBaseline:
    """The median price of the same make, model and year (falling back to make+model, make, all)."""

    name = "median_make_model_year"

    def fit(self, train: pd.DataFrame) -> MedianBaseline:
        self.levels = []
        for keys in (["make", "model", "model_year"], ["make", "model"], ["make"]):
            self.levels.append((keys, train.groupby(keys, dropna=False)["market_price"].median()))
        self.overall = float(train["market_price"].median())
        return self

    def predict(self, df: pd.DataFrame) -> np.ndarray:
        predicted = pd.Series(np.nan, index=df.index)
        for keys, medians in self.levels:
            found = pd.MultiIndex.from_frame(df[keys]) if len(keys) > 1 else pd.Index(df[keys[0]])
            values = pd.Series(medians.reindex(found).to_numpy(), index=df.index)
            predicted = predicted.fillna(values)
        return predicted.fillna(self.overall).to_numpy()


class LinearBaseline(RidgeLogPrice):
    """The linear model: ridge regression of log price (carprice.training.linear), on its own."""

    name = "linear_ridge"


class BareLightGBM:
    """LightGBM on log price with its own defaults over the same features: what anyone would try first."""

    name = "bare_lightgbm"
    params = {"objective": "regression", "verbose": -1, "seed": 7, "deterministic": True, "num_threads": 2}
    rounds = 100  # LightGBM's default number of boosting rounds

    def fit(self, train: pd.DataFrame) -> BareLightGBM:
        import lightgbm as lgb

        from carprice.training.features import model_features
        from carprice.training.modeling import category_levels, to_matrix, training_params

        self.features = model_features(train)
        self.categories = category_levels(train, self.features)
        data = lgb.Dataset(to_matrix(train, self.features, self.categories), label=train["log_price"],
                           categorical_feature=list(self.categories))
        self.booster = lgb.train(training_params(self.params, len(train)), data, num_boost_round=self.rounds)
        return self

    def predict(self, df: pd.DataFrame) -> np.ndarray:
        from carprice.training.modeling import to_matrix

        return np.exp(self.booster.predict(to_matrix(df, self.features, self.categories)))


BASELINES = (MedianBaseline, LinearBaseline, BareLightGBM)


@dataclass
class Decision:
    """Whether the challenger replaces the champion, and the numbers behind it."""

    promote: bool
    reason: str
    details: dict = field(default_factory=dict)


def _better(metric: str, challenger: float, reference: float, margin: float) -> bool:
    if metric in LOWER_IS_BETTER:
        return challenger <= reference * (1 - margin)
    return challenger >= reference * (1 + margin)


def _scores(scores: dict[str, float]) -> str:
    """Baselines' scores as a reader wants them: "linear_ridge 2,123, bare_lightgbm 2,040"."""
    return ", ".join(f"{name} {value:,.4g}" for name, value in scores.items())


def decide_promotion(challenger: dict, champion: dict | None, baselines: dict[str, dict],
                     cfg: PromotionConfig) -> Decision:
    """Apply the promotion rule to scores (``score`` output) of the same evaluation rows."""
    metric = cfg.main_metric
    ch = challenger["overall"][metric]
    if champion is None:
        beaten = {name: round(b["overall"][metric], 4) for name, b in baselines.items()}
        losing = {name: v for name, v in beaten.items() if not _better(metric, ch, v, 0.0)}
        if losing:
            return Decision(False, f"first model does not beat the baselines on {metric}: {ch:,.4g} vs "
                                   f"{_scores(losing)}", {"challenger": ch, "baselines": beaten})
        return Decision(True, f"first model; beats the baselines on {metric}: {ch:,.4g} vs {_scores(beaten)}",
                        {"challenger": ch, "baselines": beaten})
    cp = champion["overall"][metric]
    details = {"metric": metric, "challenger": ch, "champion": cp, "margin": cfg.min_relative_improvement}
    if not _better(metric, ch, cp, cfg.min_relative_improvement):
        return Decision(False, f"{metric} {ch:.4g} does not improve on the champion's {cp:.4g} by "
                               f"{cfg.min_relative_improvement:.0%}", details)
    regressions = {}
    for name, stats in challenger["slices"].items():
        base = champion["slices"].get(name)
        if base is None or stats["n"] < cfg.min_slice_rows:
            continue
        if metric in LOWER_IS_BETTER and stats[metric] > base[metric] * (1 + cfg.max_slice_regression):
            regressions[name] = {"challenger": round(stats[metric], 4), "champion": round(base[metric], 4),
                                 "n": stats["n"]}
    details["slice_regressions"] = regressions
    if regressions:
        return Decision(False, f"better overall ({ch:.4g} vs {cp:.4g}) but worse by more than "
                               f"{cfg.max_slice_regression:.0%} on {sorted(regressions)}", details)
    return Decision(True, f"{metric} {ch:.4g} improves on the champion's {cp:.4g} "
                          f"({1 - ch / cp:.1%}); no large slice regresses", details)
