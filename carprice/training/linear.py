"""Ridge regression of log price on one-hot categories and standardized numbers.

Used twice: as the "linear model" baseline, and as the base the LightGBM price model boosts from
(the trees learn what the linear model misses). It serializes to plain JSON, never pickle.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse

from carprice.training.features import CATEGORICAL, Levels, as_floats

NUMERIC = ["age_years", "mileage_km", "power_kw", "model_year"]


class RidgeLogPrice:
    """Ridge on log price: intercept, standardized numeric features (median-filled), one-hot categories."""

    def __init__(self, alpha: float = 1.0):
        self.alpha = alpha

    def _design(self, df: pd.DataFrame) -> sparse.csr_matrix:
        """Sparse design matrix: intercept, standardized numbers, one column per known category level."""
        n = len(df)
        columns = [np.ones(n)]
        for col in NUMERIC:
            x = df[col].astype(float).fillna(self.fill[col]).to_numpy()
            columns.append((x - self.mean[col]) / self.std[col])
        blocks = [sparse.csr_matrix(np.column_stack(columns))]
        rows = np.arange(n)
        for col, levels in self.levels.items():
            codes = pd.Categorical(df[col].astype("string").astype(object), categories=levels).codes
            known = codes >= 0
            ones = np.ones(known.sum())
            blocks.append(sparse.csr_matrix((ones, (rows[known], codes[known])), shape=(n, len(levels))))
        return sparse.hstack(blocks, format="csr")

    def fit(self, train: pd.DataFrame, weight: np.ndarray | None = None) -> RidgeLogPrice:
        """Fit on ``train`` (each row counted ``weight`` times, when given)."""
        self.fill = {c: float(np.nan_to_num(train[c].astype(float).median())) for c in NUMERIC}
        filled = {c: train[c].astype(float).fillna(self.fill[c]) for c in NUMERIC}
        self.mean = {c: float(v.mean()) for c, v in filled.items()}
        self.std = {c: float(v.std()) or 1.0 for c, v in filled.items()}
        self.levels = {c: sorted(train[c].dropna().astype(str).unique()) for c in CATEGORICAL}
        X = self._design(train)
        Xw = X if weight is None else X.multiply(np.asarray(weight, dtype=float)[:, None]).tocsr()
        xtx = (Xw.T @ X).toarray()
        penalty = self.alpha * np.eye(xtx.shape[0])
        penalty[0, 0] = 0.0
        self.coef = np.linalg.solve(xtx + penalty, Xw.T @ train["log_price"].to_numpy())
        self.fitted_log = X @ self.coef  # in-sample predictions, so callers need not rebuild the design
        return self

    @classmethod
    def constant(cls, train: pd.DataFrame, weight: np.ndarray | None = None) -> RidgeLogPrice:
        """A base that predicts the mean log price for every car: the trees then model everything (no linear base)."""
        model = cls(alpha=0.0)
        model.fill, model.mean, model.std = (dict.fromkeys(NUMERIC, 0.0), dict.fromkeys(NUMERIC, 0.0),
                                             dict.fromkeys(NUMERIC, 1.0))
        model.levels = {}
        mean = float(np.average(train["log_price"], weights=weight))
        model.coef = np.array([mean] + [0.0] * len(NUMERIC))
        model.fitted_log = np.full(len(train), mean)
        return model

    def term_matrix(self, columns: Mapping[str, Any]) -> tuple[list[str], np.ndarray]:
        """Each feature's term in every row's log price, without the sparse design (one row costs microseconds):
        (feature names, a rows × features array); the intercept plus a row's terms is its ``predict_log``.
        ``columns`` is a feature DataFrame or a mapping of feature columns."""
        names = list(NUMERIC) + list(self.levels)
        n = len(columns[NUMERIC[0]])
        out = np.zeros((n, len(names)))
        for j, col in enumerate(NUMERIC):
            x = as_floats(columns[col])
            x = np.where(np.isnan(x), self.fill[col], x)
            out[:, j] = self.coef[1 + j] * (x - self.mean[col]) / self.std[col]
        start = 1 + len(NUMERIC)
        for j, (col, levels) in enumerate(self.levels.items(), start=len(NUMERIC)):
            codes = self._levels(col).codes(columns[col])
            out[:, j] = np.where(codes >= 0, self.coef[start + codes], 0.0)  # an unseen level adds nothing
            start += len(levels)
        return names, out

    def _levels(self, col: str) -> Levels:
        """The levels of ``col`` as a Levels, built once per model."""
        cache = self.__dict__.setdefault("_indexes", {})
        if col not in cache:
            cache[col] = Levels(self.levels[col])
        return cache[col]

    def predict_log(self, df: Mapping[str, Any]) -> np.ndarray:
        return self.coef[0] + self.term_matrix(df)[1].sum(axis=1)

    def predict(self, df: Mapping[str, Any]) -> np.ndarray:
        return np.exp(self.predict_log(df))

    def terms(self, df: pd.DataFrame) -> tuple[float, pd.DataFrame]:
        """The prediction taken apart: (intercept, one column of log-price terms per feature); the intercept plus
        a row's terms is exactly its ``predict_log``."""
        names, matrix = self.term_matrix(df)
        return float(self.coef[0]), pd.DataFrame(matrix, columns=names, index=df.index)

    def to_dict(self) -> dict:
        return {"alpha": self.alpha, "fill": self.fill, "mean": self.mean, "std": self.std, "levels": self.levels,
                "coef": [float(c) for c in self.coef]}

    @classmethod
    def from_dict(cls, data: dict) -> RidgeLogPrice:
        model = cls(alpha=data["alpha"])
        model.fill, model.mean, model.std, model.levels = data["fill"], data["mean"], data["std"], data["levels"]
        model.coef = np.asarray(data["coef"], dtype=float)
        return model
