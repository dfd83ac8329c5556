"""Ridge regression of log price on one-hot categories and standardized numbers.

Used twice: as the "linear model" baseline, and as the base the LightGBM price model boosts from
(the trees learn what the linear model misses). It serializes to plain JSON, never pickle.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from carprice.features import CATEGORICAL

NUMERIC = ["age_years", "mileage_km", "power_kw", "model_year"]
_CHUNK = 20_000


class RidgeLogPrice:
    """Ridge on log price: intercept, standardized numeric features (median-filled), one-hot categories."""

    def __init__(self, alpha: float = 1.0):
        self.alpha = alpha

    def _design(self, df: pd.DataFrame) -> np.ndarray:
        parts = [np.ones((len(df), 1))]
        for col in NUMERIC:
            x = df[col].astype(float).fillna(self.fill[col]).to_numpy()
            parts.append(((x - self.mean[col]) / self.std[col]).reshape(-1, 1))
        for col, levels in self.levels.items():
            codes = pd.Categorical(df[col].astype("string").astype(object), categories=levels).codes
            onehot = np.zeros((len(df), len(levels)))
            known = codes >= 0
            onehot[np.arange(len(df))[known], codes[known]] = 1.0
            parts.append(onehot)
        return np.hstack(parts)

    def fit(self, train: pd.DataFrame) -> "RidgeLogPrice":
        self.fill = {c: float(np.nan_to_num(train[c].astype(float).median())) for c in NUMERIC}
        filled = {c: train[c].astype(float).fillna(self.fill[c]) for c in NUMERIC}
        self.mean = {c: float(v.mean()) for c, v in filled.items()}
        self.std = {c: float(v.std()) or 1.0 for c, v in filled.items()}
        self.levels = {c: sorted(train[c].dropna().astype(str).unique()) for c in CATEGORICAL}
        # Normal equations accumulated in chunks: the one-hot design of a million rows never exists whole.
        y = train["log_price"].to_numpy()
        xtx, xty = None, None
        for start in range(0, len(train), _CHUNK):
            X = self._design(train.iloc[start:start + _CHUNK])
            xtx = X.T @ X if xtx is None else xtx + X.T @ X
            xty = X.T @ y[start:start + _CHUNK] if xty is None else xty + X.T @ y[start:start + _CHUNK]
        penalty = self.alpha * np.eye(xtx.shape[0])
        penalty[0, 0] = 0.0
        self.coef = np.linalg.solve(xtx + penalty, xty)
        return self

    def predict_log(self, df: pd.DataFrame) -> np.ndarray:
        if len(df) == 0:
            return np.zeros(0)
        return np.concatenate([self._design(df.iloc[s:s + _CHUNK]) @ self.coef for s in range(0, len(df), _CHUNK)])

    def predict(self, df: pd.DataFrame) -> np.ndarray:
        return np.exp(self.predict_log(df))

    def to_dict(self) -> dict:
        return {"alpha": self.alpha, "fill": self.fill, "mean": self.mean, "std": self.std, "levels": self.levels,
                "coef": [float(c) for c in self.coef]}

    @classmethod
    def from_dict(cls, data: dict) -> "RidgeLogPrice":
        model = cls(alpha=data["alpha"])
        model.fill, model.mean, model.std, model.levels = data["fill"], data["mean"], data["std"], data["levels"]
        model.coef = np.asarray(data["coef"], dtype=float)
        return model
