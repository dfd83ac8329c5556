"""Train, evaluate, save and load the LightGBM price model (log price, categorical dtypes, text artifacts)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from carprice.training.features import (
    CATEGORICAL,
    PROPERTY_NUMERIC,
    TIME_FEATURE,
    Levels,
    as_floats,
    is_property_feature,
    model_features,
)
from carprice.training.linear import RidgeLogPrice
from carprice.training.splitting import GROUP_COLUMN, GROUPED_RANDOM, SPLIT_SEED, Split, split_holdout

# The starting recipe (tuned on the simulated market: small trees on top of the linear base). Each challenger's
# recipe is chosen on the installation's own data among candidates around it (carprice.training.recipe).
DEFAULT_PARAMS = {
    "linear_base": True,  # boost from a ridge regression of log price (else from the mean log price)
    "objective": "regression",
    "learning_rate": 0.05,
    "num_leaves": 15,
    "min_data_in_leaf": 10,
    "feature_fraction": 0.9,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 1.0,
    "cat_smooth": 10.0,
    "max_cat_to_onehot": 4,
    "num_threads": 2,
    "seed": 7,
    "deterministic": True,
    "force_col_wise": True,
    "verbose": -1,
}
MAX_ROUNDS = 3000
# Below this many rows LightGBM trains on one thread whatever ``num_threads`` asks: on a few thousand rows a second
# thread saves little, and on a busy 2-core machine its OpenMP threads wait for each other at every split (the
# demo's recipe search on 3,600 rows: 62-65 s on two threads beside two busy processes, 7-10 s on one, same trees).
ONE_THREAD_ROWS = 50_000
EARLY_STOPPING_ROUNDS = 100
BASE_ALPHA = 1.0
# A tenth of the training rows (the newest, when dates can tell) calibrates the interval; it needs a few dozen rows.
MIN_TRAIN_ROWS = 300
# Without a time order, this many folds of whole cars choose the rounds on data up to CV_MAX_ROWS rows: one random
# tenth of a small data set is a hundred-odd rows, too few to stop on (they stopped after one round on 1,146 real
# Toyota Corollas, where five folds found 29 and beat the ridge they were stuck at).
CV_FOLDS = 5
CV_MAX_ROWS = 20_000
# Up to this many rows the chosen recipe is refit on every row (the validation tenth included) with the chosen
# rounds; above it a tenth fewer rows costs little and a second fit costs as much as the first.
REFIT_MAX_ROWS = 50_000
# Recipe parameters that are not LightGBM's: the linear base, the listing date as a feature (``TIME_FEATURE``), and
# recency weights (a listing counts half as much per this many days older than the newest).
RECIPE_ONLY = {"linear_base", "time_feature", "recency_half_life_days"}
# What training adds to a model's parameters about itself: the rounds chosen, and the recipe search's trials.
TRAINING_RECORDS = {"num_boost_round", "recipe_selection"}
# Split-conformal offsets from fewer residuals than this are mostly noise.
MIN_CALIBRATION_ROWS = 20
# Nominal coverage of the prediction interval (split-conformal on log-price residuals).
INTERVAL_COVERAGE = 0.9


class ModelArtifactError(ValueError):
    """A model folder whose files are missing, unreadable or altered."""


@dataclass
class PriceModel:
    """A linear base plus boosted trees on its residuals, with feature order and category levels.

    log price = base (ridge on one-hot categories and numbers) + trees (LightGBM on every feature).
    """

    booster: lgb.Booster
    base: RidgeLogPrice
    features: list[str]
    categories: dict[str, list[str]]
    params: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    # Log-price residual quantiles from held-back calibration rows: the interval's lower and upper offsets.
    interval: tuple[float, float] = (0.0, 0.0)
    # How the rows that chose the number of rounds (and calibrate the interval) were split off (splitting.Split).
    early_stopping_split: dict = field(default_factory=dict)
    # Metrics on the early-stopping fold at training time (not saved: the judgement scores on fresh rows).
    validation: dict = field(default_factory=dict)

    def matrix(self, df: pd.DataFrame) -> pd.DataFrame:
        """The feature matrix with the training categories (unseen levels become missing)."""
        return to_matrix(df, self.features, self.categories)

    def values(self, columns: Mapping[str, Any]) -> np.ndarray:
        """The feature matrix as the booster reads it: float64, a category as the position of its level among the
        training's (unseen or missing: NaN), which is what LightGBM makes of ``matrix``; without a DataFrame, so
        one row costs microseconds. ``columns`` is a feature DataFrame or a mapping of feature columns
        (``features.feature_columns``); a property column it lacks is all missing, any other is an error."""
        missing = [f for f in self.features if f not in columns and not is_property_feature(f)]
        if missing:
            raise KeyError(f"feature columns missing: {missing}")
        n = len(columns[self.features[0]])
        out = np.full((n, len(self.features)), np.nan)
        for j, name in enumerate(self.features):
            if name not in columns:
                continue
            if name in self.categories:
                codes = self._levels(name).codes(columns[name])
                out[:, j] = np.where(codes >= 0, codes, np.nan)
            else:
                out[:, j] = as_floats(columns[name])
        return out

    def _levels(self, col: str) -> Levels:
        """The training's levels of ``col`` as a Levels, built once per model."""
        cache = self.__dict__.setdefault("_indexes", {})
        if col not in cache:
            cache[col] = Levels(self.categories[col])
        return cache[col]

    def _threads(self, num_threads: int | None) -> int:
        return num_threads or self.params.get("num_threads", 2)

    def predict_price(self, df: Mapping[str, Any]) -> np.ndarray:
        """Predicted prices in the market currency."""
        return np.exp(self.predict_log(df))

    def predict_log(self, df: Mapping[str, Any], num_threads: int | None = None) -> np.ndarray:
        """Predicted log prices; ``num_threads`` overrides the training's (one thread answers a few rows faster)."""
        trees = self.booster.predict(self.values(df), num_threads=self._threads(num_threads))  # checks the columns
        return self.base.predict_log(df) + trees

    def predict_interval(self, df: Mapping[str, Any], num_threads: int | None = None
                         ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(lower, predicted, upper) prices in the market currency; the interval covers INTERVAL_COVERAGE of prices."""
        log = self.predict_log(df, num_threads)
        return np.exp(log + self.interval[0]), np.exp(log), np.exp(log + self.interval[1])

    def explain_log(self, df: Mapping[str, Any], num_threads: int | None = None) -> tuple[np.ndarray, pd.DataFrame]:
        """Each row's log price taken apart: (baseline per row, one column of log-price effects per feature).

        A feature's effect is its exact term in the linear base plus its SHAP contribution in the trees
        (LightGBM ``pred_contrib``); the baseline is the base's intercept plus the trees' expected value. Baseline
        plus the row's effects is its ``predict_log``, up to float rounding.
        """
        contrib = self.booster.predict(self.values(df), pred_contrib=True, num_threads=self._threads(num_threads))
        names, terms = self.base.term_matrix(df)
        effects = contrib[:, :-1]
        position = {name: j for j, name in enumerate(self.features)}
        extra = [name for name in names if name not in position]  # a base term the trees do not use
        if extra:
            effects = np.hstack([effects, np.zeros((len(effects), len(extra)))])
            position.update({name: len(self.features) + i for i, name in enumerate(extra)})
        effects[:, [position[name] for name in names]] += terms
        index = df.index if isinstance(df, pd.DataFrame) else None
        return self.base.coef[0] + contrib[:, -1], pd.DataFrame(effects, columns=self.features + extra, index=index)


def category_levels(df: pd.DataFrame, features: list[str] | None = None) -> dict[str, list[str]]:
    """Sorted levels of each categorical column (of ``features``, when given), as the model will know them."""
    columns = CATEGORICAL + [c for c in features or [] if is_property_feature(c) and c not in PROPERTY_NUMERIC]
    return {c: sorted(df[c].dropna().astype(str).unique().tolist()) for c in columns if c in df}


def to_matrix(df: pd.DataFrame, features: list[str], categories: dict[str, list[str]]) -> pd.DataFrame:
    """Columns in ``features`` order; categoricals as pandas ``category`` with fixed levels.

    A property column the frame lacks (a site or a request without that property) is all missing; any other
    missing column is an error.
    """
    missing = [f for f in features if f not in df.columns and not is_property_feature(f)]
    if missing:
        raise KeyError(f"feature columns missing: {missing}")
    X = df.reindex(columns=features)
    for col, levels in categories.items():
        X[col] = pd.Categorical(X[col].astype("string").astype(object), categories=levels)
    for col in features:
        if col not in categories:
            X[col] = X[col].astype("float64")
    return X


def train_model(train: pd.DataFrame, params: dict | None = None, features: list[str] | None = None, *,
                refit: bool | None = None) -> PriceModel:
    """Fit the linear base and LightGBM on ``log_price``: validation folds choose the number of rounds and calibrate
    the interval, then the model is refit on every row (unless ``refit`` is False: a recipe trial; by default when
    ``needs_refit``).

    The folds: the newest tenth when dates can tell (one time-ordered fold); without a time order, CV_FOLDS folds
    of whole cars when there are at most CV_MAX_ROWS rows (one random tenth is too few rows to stop on), else
    one.
    """
    params = {**DEFAULT_PARAMS, **(params or {})}
    features = features or model_features(train) + ([TIME_FEATURE] if params.get("time_feature") else [])
    if len(train) < MIN_TRAIN_ROWS:
        raise ValueError(f"need at least {MIN_TRAIN_ROWS} listings to train, got {len(train)}")
    categories = category_levels(train, features)
    folds, fold = validation_folds(train)
    fitted = [_fit_fold(train.loc[~in_valid], train.loc[in_valid], params, features, categories)
              for in_valid in folds]
    # The round where the validation loss averaged over the folds is lowest (over the rounds every fold reached).
    reached = min(len(curve) for _, _, curve in fitted)
    rounds = int(np.argmin(np.mean([curve[:reached] for _, _, curve in fitted], axis=0))) + 1
    # Out-of-fold residuals at that round: they chose it, never trained on, and calibrate the interval.
    residuals, actual = [], []
    for (base, booster, _), in_valid in zip(fitted, folds):
        valid = train.loc[in_valid]
        predicted = base.predict_log(valid) + booster.predict(to_matrix(valid, features, categories),
                                                              num_iteration=rounds)
        residuals.append(valid["log_price"].to_numpy() - predicted)
        actual.append(valid["log_price"].to_numpy())
    residuals, actual = np.concatenate(residuals), np.concatenate(actual)
    base, booster, _ = fitted[0]
    # With one fold and no refit, its booster serves: exactly the chosen trees.
    booster = lgb.Booster(model_str=booster.model_to_string(num_iteration=rounds))
    model = PriceModel(booster=booster, base=base, features=list(features), categories=categories,
                       params={**params, "num_boost_round": rounds},
                       early_stopping_split={**fold.to_dict(), "folds": len(folds), "refit": False})
    model.interval = conformal_interval(residuals)
    # How well the recipe did on rows it did not train on: what recipe selection compares.
    model.validation = regression_metrics(np.exp(actual), np.exp(actual - residuals))
    if needs_refit(model, len(train)) if refit is None else refit:
        return refit_model(model, train)
    return model


def needs_refit(model: PriceModel, n_rows: int) -> bool:
    """Whether a model fit on folds should be refit on all ``n_rows``: always after several folds (no fold saw every
    row), and after one on data small enough that its tenth matters."""
    return model.early_stopping_split.get("folds", 1) > 1 or n_rows <= REFIT_MAX_ROWS


def refit_model(model: PriceModel, train: pd.DataFrame) -> PriceModel:
    """The same recipe with the rounds its folds chose, fit again on every row of ``train``; its interval and
    validation scores stay those of the folds (rows the recipe had not trained on)."""
    base, booster = _fit_all(train, model.params, model.features, model.categories, model.params["num_boost_round"])
    return PriceModel(booster=booster, base=base, features=model.features, categories=model.categories,
                      params=model.params, metrics=model.metrics, interval=model.interval,
                      early_stopping_split={**model.early_stopping_split, "refit": True},
                      validation=model.validation)


def validation_folds(train: pd.DataFrame) -> tuple[list[pd.Series], Split]:
    """Boolean masks of the validation rows of each fold, and how the first was split off (see ``train_model``)."""
    _, valid, fold = split_holdout(train, 0.1, min_rows=MIN_CALIBRATION_ROWS)
    first = train.index.isin(valid.index)
    if fold.kind != GROUPED_RANDOM or len(train) > CV_MAX_ROWS:
        return [pd.Series(first, index=train.index)], fold
    groups = train[GROUP_COLUMN].astype("string").fillna(train["listing_key"].astype("string"))
    # The same seeded hash as the holdout's, so a car's fold is fixed whatever else changed.
    hashes = pd.util.hash_pandas_object(groups, index=False, hash_key=f"{SPLIT_SEED:016d}").to_numpy()
    fold_of = hashes % np.uint64(CV_FOLDS)
    masks = [pd.Series(fold_of == i, index=train.index) for i in range(CV_FOLDS)]
    if min(int(m.sum()) for m in masks) < MIN_CALIBRATION_ROWS:
        return [pd.Series(first, index=train.index)], fold
    return masks, fold


def recipe_of(params: dict) -> dict:
    """The recipe in a trained model's parameters: without what training recorded about itself (rounds, selection)."""
    return {k: v for k, v in params.items() if k not in TRAINING_RECORDS}


def booster_params(params: dict) -> dict:
    """LightGBM's parameters of a recipe: not the recipe's own (``RECIPE_ONLY``), nor what training recorded."""
    return {k: v for k, v in recipe_of(params).items() if k not in RECIPE_ONLY}


def recency_weights(listed_year: pd.Series, half_life_days: float | None) -> np.ndarray | None:
    """Each row's weight, halving per ``half_life_days`` it was listed before the newest row (None: all equal).

    ``listed_year`` is the time feature (``TIME_FEATURE``); a row without one counts like the median row.
    """
    if not half_life_days:
        return None
    years = listed_year.astype("float64")
    days = (years.max() - years.fillna(years.median())).fillna(0).to_numpy() * 365.25
    return 0.5 ** (days / half_life_days)


def _base(fit: pd.DataFrame, params: dict, weight: np.ndarray | None) -> RidgeLogPrice:
    if params["linear_base"]:
        return RidgeLogPrice(alpha=BASE_ALPHA).fit(fit, weight)
    return RidgeLogPrice.constant(fit, weight)


def training_params(params: dict, n_rows: int) -> dict:
    """LightGBM's parameters for training on ``n_rows`` rows: one thread on data below ``ONE_THREAD_ROWS``."""
    lgb_params = booster_params(params)
    if n_rows < ONE_THREAD_ROWS:
        lgb_params["num_threads"] = 1
    return lgb_params


def _fit_fold(fit: pd.DataFrame, valid: pd.DataFrame, params: dict, features: list[str],
              categories: dict[str, list[str]]) -> tuple[RidgeLogPrice, lgb.Booster, list[float]]:
    """Base and trees fit on ``fit`` with early stopping on ``valid``; the validation loss after each round."""
    weight = recency_weights(fit[TIME_FEATURE], params.get("recency_half_life_days"))
    base = _base(fit, params, weight)
    dtrain = lgb.Dataset(to_matrix(fit, features, categories), label=fit["log_price"], weight=weight,
                         init_score=base.fitted_log, categorical_feature=list(categories))
    dvalid = lgb.Dataset(to_matrix(valid, features, categories), label=valid["log_price"],
                         init_score=base.predict_log(valid), reference=dtrain)
    curves: dict = {}
    # Every tree is kept (not only up to this fold's own best round): the folds' residuals are taken at the round
    # that is best over all folds, which may be later.
    booster = lgb.train({**training_params(params, len(fit)), "metric": "l2"}, dtrain, num_boost_round=MAX_ROUNDS,
                        valid_sets=[dvalid], valid_names=["valid"], keep_training_booster=True,
                        callbacks=[lgb.early_stopping(EARLY_STOPPING_ROUNDS, verbose=False),
                                   lgb.record_evaluation(curves)])
    return base, booster, curves["valid"]["l2"]


def _fit_all(train: pd.DataFrame, params: dict, features: list[str], categories: dict[str, list[str]],
             rounds: int) -> tuple[RidgeLogPrice, lgb.Booster]:
    """Base and trees on every row, with the number of rounds the folds chose."""
    weight = recency_weights(train[TIME_FEATURE], params.get("recency_half_life_days"))
    base = _base(train, params, weight)
    dtrain = lgb.Dataset(to_matrix(train, features, categories), label=train["log_price"], weight=weight,
                         init_score=base.fitted_log, categorical_feature=list(categories))
    return base, lgb.train(training_params(params, len(train)), dtrain, num_boost_round=rounds)


def conformal_interval(residuals: np.ndarray, coverage: float = INTERVAL_COVERAGE) -> tuple[float, float]:
    """Split-conformal offsets (lower, upper) of log price from calibration residuals (actual - predicted)."""
    if len(residuals) < MIN_CALIBRATION_ROWS:
        raise ValueError(f"need at least {MIN_CALIBRATION_ROWS} calibration residuals, got {len(residuals)}")
    alpha = (1 - coverage) / 2
    n = len(residuals)
    # The finite-sample correction keeps coverage at least nominal on exchangeable data.
    lo_q, hi_q = max(0.0, np.floor(alpha * (n + 1)) / n), min(1.0, np.ceil((1 - alpha) * (n + 1)) / n)
    return float(np.quantile(residuals, lo_q)), float(np.quantile(residuals, hi_q))


def regression_metrics(actual: np.ndarray, predicted: np.ndarray, lower: np.ndarray | None = None,
                       upper: np.ndarray | None = None) -> dict[str, float]:
    """MAE (market currency) and R², median and mean absolute percentage error, row count, and interval coverage
    if given."""
    actual = np.asarray(actual, dtype=float)
    predicted = np.asarray(predicted, dtype=float)
    err = predicted - actual
    ss_res = float(np.sum(err**2))
    ss_tot = float(np.sum((actual - actual.mean()) ** 2))
    metrics = {
        "mae": float(np.mean(np.abs(err))) if len(actual) else float("nan"),
        "median_ape": float(np.median(np.abs(err) / actual)) if len(actual) else float("nan"),
        "mape": float(np.mean(np.abs(err) / actual)) if len(actual) else float("nan"),
        "r2": 1 - ss_res / ss_tot if ss_tot > 0 else float("nan"),
        "n": len(actual),
    }
    if lower is not None and upper is not None and len(actual):
        metrics["interval_coverage"] = float(np.mean((actual >= lower) & (actual <= upper)))
    return metrics


def evaluate(model: PriceModel, df: pd.DataFrame) -> dict[str, float]:
    """The model's metrics on ``df`` (prices in the market currency), interval coverage included."""
    lower, predicted, upper = model.predict_interval(df)
    return regression_metrics(df["market_price"].to_numpy(), predicted, lower, upper)


@dataclass(frozen=True)
class SavedModel:
    version: str
    path: Path
    sha256: str


def save_model(model: PriceModel, models_dir: Path, trained_at: datetime, extra: dict | None = None) -> SavedModel:
    """Write ``model.txt`` (LightGBM text) and ``model.json`` into a new folder named by version."""
    text = model.booster.model_to_string()
    base = model.base.to_dict()
    sha = artifact_checksum(text, base)
    # Milliseconds keep two trainings within one second apart, even on identical data.
    version = f"{trained_at:%Y%m%dT%H%M%S}{trained_at.microsecond // 1000:03d}-{sha[:8]}"
    folder = models_dir / version
    folder.mkdir(parents=True, exist_ok=False)
    (folder / "model.txt").write_text(text, encoding="utf-8")
    meta = {"version": version, "sha256": sha, "features": model.features, "categories": model.categories,
            "params": model.params, "metrics": model.metrics, "interval": list(model.interval), "base": base,
            "early_stopping_split": model.early_stopping_split, "trained_at": trained_at.isoformat(), **(extra or {})}
    (folder / "model.json").write_text(json.dumps(meta, indent=2, default=str), encoding="utf-8")
    return SavedModel(version=version, path=folder, sha256=sha)


def artifact_checksum(trees_text: str, base: dict) -> str:
    """SHA-256 of a model: its LightGBM text and its linear base (canonical JSON)."""
    digest = hashlib.sha256(trees_text.encode("utf-8"))
    digest.update(json.dumps(base, sort_keys=True).encode("utf-8"))
    return digest.hexdigest()


def load_model(folder: Path, expected_sha256: str | None = None) -> PriceModel:
    """Load a saved model; ModelArtifactError if files are missing or the checksum does not match."""
    try:
        text = (folder / "model.txt").read_text(encoding="utf-8")
        meta = json.loads((folder / "model.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelArtifactError(f"cannot read model in {folder}: {exc}") from exc
    if "base" not in meta:
        raise ModelArtifactError(f"model.json in {folder} has no linear base")
    sha = artifact_checksum(text, meta["base"])
    for expected in (meta.get("sha256"), expected_sha256):
        if expected and expected != sha:
            raise ModelArtifactError(f"the model in {folder} does not match its checksum {expected[:12]}…")
    try:
        booster = lgb.Booster(model_str=text)
    except lgb.basic.LightGBMError as exc:
        raise ModelArtifactError(f"LightGBM cannot load {folder / 'model.txt'}: {exc}") from exc
    return PriceModel(booster=booster, base=RidgeLogPrice.from_dict(meta["base"]), features=meta["features"],
                      categories=meta["categories"],
                      params=meta.get("params", {}), metrics=meta.get("metrics", {}),
                      interval=tuple(meta.get("interval", (0.0, 0.0))),
                      early_stopping_split=meta.get("early_stopping_split", {}))
