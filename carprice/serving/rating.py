"""The five-level price rating: where an asking price sits against the model's typical price and its 90% interval."""

from __future__ import annotations

import numpy as np

RATINGS = ("great", "good", "fair", "high", "overpriced")
# Bounds on the position (0 at the typical price, -1 at the interval's lower end, +1 at its upper end, in log
# price). Outside the interval is where 5% of comparable cars ask on each side: "great" is exactly what the
# pipeline lists as a deal (asking below the lower end), "overpriced" its mirror. Inside, a third of each half
# is the model's ordinary spread: with near-normal residuals (the 90% end at 1.64 sigma) a third of it is about
# 0.55 sigma, so roughly 40% of listings are "fair" and a quarter each "good" or "high".
RATING_BOUNDS = (-1.0, -1 / 3, 1 / 3, 1.0)
# An interval end this close to the typical price (a degenerate calibration) still scales the position finitely.
_MIN_HALF_WIDTH = 1e-6


def position(asking: np.ndarray, lower: np.ndarray, predicted: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """Asking price against the interval: 0 at the prediction, -1 at the lower end, +1 at the upper end (log)."""
    asking, lower, predicted, upper = (np.asarray(a, dtype=float) for a in (asking, lower, predicted, upper))
    gap = np.log(asking / predicted)
    below = np.maximum(np.log(predicted / lower), _MIN_HALF_WIDTH)
    above = np.maximum(np.log(upper / predicted), _MIN_HALF_WIDTH)
    return np.where(gap < 0, gap / below, gap / above)


def rate(asking: np.ndarray, lower: np.ndarray, predicted: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """One of RATINGS per asking price (a position on a bound gets the rating above it)."""
    level = np.searchsorted(np.asarray(RATING_BOUNDS), position(asking, lower, predicted, upper), side="right")
    return np.asarray(RATINGS, dtype=object)[level]


def rating_sql(asking: str, lower: str, predicted: str, upper: str) -> str:
    """The same rating as ``rate`` as a SQL expression over four column names (written by this module, never by a
    client)."""
    gap = f"ln({asking} / {predicted})"
    pos = (f"(CASE WHEN {gap} < 0 THEN {gap} / greatest(ln({predicted} / {lower}), {_MIN_HALF_WIDTH}) "
           f"ELSE {gap} / greatest(ln({upper} / {predicted}), {_MIN_HALF_WIDTH}) END)")
    cases = " ".join(f"WHEN {pos} < {bound!r} THEN '{name}'" for bound, name in zip(RATING_BOUNDS, RATINGS))
    return f"(CASE {cases} ELSE '{RATINGS[-1]}' END)"
