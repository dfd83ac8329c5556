"""Value described cars with a loaded champion: the training's features of each car, its typical asking price
and 90% interval, a rating of its asking price (or why there is none), the features that move its price most,
and comparable listings on sale now.

Pure functions of DataFrames and a loaded model; the snapshot is read elsewhere (``serving.store``). The model
learns asking prices, not sale prices: what is predicted is what comparable cars are offered for.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from carprice.serving.rating import rate
from carprice.training.features import as_floats, feature_columns
from carprice.training.modeling import PriceModel

# What each answer says the price is.
PRICE_MEANING = ("the typical asking price of comparable listings: the model learns asking prices, not sale "
                 "prices")
# The described car's fields that are clean-listing columns of the same name.
CAR_FIELDS = ("make", "model", "model_year", "first_registration", "mileage_km", "fuel", "transmission", "body",
              "power_kw", "color", "doors", "condition", "seller_type", "region", "title", "description")
# LightGBM answers a few rows faster on one thread than on two (the per-call thread start-up dominates); the
# server answers concurrent requests on its threads instead.
PREDICT_THREADS = 1
# For comparables, one year of age counts like this many km (about a year's driving).
KM_PER_YEAR_OF_AGE = 20_000.0
# Close names offered for an unknown make or model.
NEAREST_NAMES = 5


@dataclass(frozen=True)
class Knowledge:
    """What the warehouse has seen and the champion learned from (keys lower-cased as the features have them)."""

    # make key -> (spelling, {model key: spelling})
    names: dict[str, tuple[str, dict[str, str]]]
    # (make key, model key) -> listings the champion learned from
    training_listings: dict[tuple[str, str], int]
    # feature -> (smallest, largest) value the champion learned from
    ranges: dict[str, tuple[float, float]]
    min_model_listings: int  # ServingConfig.min_model_listings

    @classmethod
    def from_frames(cls, known: pd.DataFrame, trained: pd.DataFrame, ranges: dict[str, tuple[float, float]],
                    min_model_listings: int) -> Knowledge:
        """From ``serving.store.known_cars`` and ``training_listings``."""
        names: dict[str, tuple[str, dict[str, str]]] = {}
        for row in known.itertuples():
            names.setdefault(row.make_key, (row.make, {}))[1][row.model_key] = row.model
        counts = {(r.make_key, r.model_key): int(r.listings) for r in trained.itertuples()}
        return cls(names=names, training_listings=counts, ranges=ranges, min_model_listings=min_model_listings)


@dataclass(frozen=True)
class UnknownName:
    """A make or model the warehouse has never seen, with the nearest ones it has."""

    index: int
    field: str
    value: str
    nearest: list[str] = field(default_factory=list)

    def message(self) -> str:
        near = f"; nearest known: {', '.join(self.nearest)}" if self.nearest else ""
        return f"unknown {self.field} {self.value!r}{near}"


def key(name: object) -> str:
    """A make or model as the features know it (lower-cased, trimmed)."""
    return str(name).strip().lower()


def nearest_names(name: str, candidates: dict[str, str], n: int = NEAREST_NAMES) -> list[str]:
    """The spellings of the ``n`` candidates (key -> spelling) closest to ``name``, closest first."""
    close = difflib.get_close_matches(key(name), list(candidates), n=n, cutoff=0.4)
    return [candidates[c] for c in close]


def unknown_names(cars: Mapping[str, Sequence], knowledge: Knowledge) -> list[UnknownName]:
    """Every make, or model of a known make, that the warehouse has never seen, with the nearest known ones."""
    makes = {k: spelling for k, (spelling, _) in knowledge.names.items()}
    found = []
    for i, (make, model) in enumerate(zip(cars["make"], cars["model"])):
        if key(make) not in knowledge.names:
            found.append(UnknownName(i, "make", str(make), nearest_names(make, makes)))
        elif key(model) not in knowledge.names[key(make)][1]:
            found.append(UnknownName(i, "model", str(model), nearest_names(model, knowledge.names[key(make)][1])))
    return found


def request_features(cars: Mapping[str, Sequence], as_of: pd.Timestamp) -> dict[str, np.ndarray]:
    """The training's features of described cars (``feature_columns``) listed on ``as_of`` (the data's date), and
    their asking prices as ``market_price``. ``cars`` maps CAR_FIELDS and ``asking_price`` to columns (a field a
    client left out may be absent)."""
    n = len(cars["make"])
    listed = np.full(n, np.datetime64(pd.Timestamp(as_of).tz_localize(None).normalize().to_datetime64(), "ns"))
    fields = {c: cars[c] if c in cars else [None] * n for c in CAR_FIELDS}
    features = feature_columns(fields, listed, listed)
    features["market_price"] = as_floats(cars["asking_price"]) if "asking_price" in cars else np.full(n, np.nan)
    return features


def no_rating_reasons(features: Mapping[str, np.ndarray], model: PriceModel, knowledge: Knowledge
                      ) -> list[str | None]:
    """Why the model cannot rate each car (None when it can): a make or model it never learned, too few listings
    of it, or a year, mileage or power outside what it learned from."""
    models_known = set(model.categories.get("model", []))
    makes, names = list(features["make"]), list(features["model"])
    listings = [knowledge.training_listings.get(pair, 0) if pair[1] in models_known else 0
                for pair in zip(makes, names)]
    # Checked on whole columns (a missing value is never outside); a reason is written only for rows that need one.
    outside = {}
    for name, (lo, hi) in knowledge.ranges.items():
        if name in features:
            values = as_floats(features[name])
            outside[name] = (values < lo) | (values > hi)
    flagged = np.zeros(len(makes), dtype=bool)
    for mask in outside.values():
        flagged |= mask
    reasons: list[str | None] = [None] * len(makes)
    for i, n in enumerate(listings):
        make, models = knowledge.names.get(makes[i], (makes[i], {}))
        car = f"{make} {models.get(names[i], names[i])}"  # as the listings spell it
        if not n:
            reasons[i] = f"the model never learned from a {car}"
        elif n < knowledge.min_model_listings:
            reasons[i] = (f"only {n} listings of a {car} to learn from (a rating needs "
                          f"{knowledge.min_model_listings})")
        elif flagged[i]:
            reasons[i] = "; ".join(
                f"{name} {as_floats(features[name])[i]:,.0f} is outside the {lo:,.0f}–{hi:,.0f} the model learned "
                "from" for name, (lo, hi) in knowledge.ranges.items() if name in outside and outside[name][i])
    return reasons


def top_effects(baseline: np.ndarray, effects: pd.DataFrame, features: Mapping[str, np.ndarray], top: int
                ) -> list[dict]:
    """Per row: the ``top`` largest feature effects (% on the price and log), the baseline price and what the
    other features add; baseline log plus every listed and other log effect is the predicted log price."""
    out = []
    values = effects.to_numpy()
    order = np.argsort(-np.abs(values), axis=1)[:, :top]
    for i in range(len(effects)):
        listed = [effects.columns[j] for j in order[i]]
        out.append({
            "baseline_price": round(float(np.exp(baseline[i])), 0),
            # A property column no request carries is missing (its effect is the trees' missing branch).
            "effects": [{"feature": name, "value": _plain(features[name][i]) if name in features else None,
                         "effect_pct": round(float(np.expm1(values[i, j])) * 100, 2),
                         "log_effect": float(values[i, j])} for name, j in zip(listed, order[i])],
            "other_log_effect": float(values[i].sum() - values[i, order[i]].sum()),
        })
    return out


def _plain(value: object) -> object:
    """A feature value as JSON has it (None for missing)."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    return value.item() if isinstance(value, np.generic) else value


class Comparables:
    """Current listings with their valuations and ratings, indexed by make once per snapshot, so that picking a
    car's comparables is a few numpy operations rather than a pass over every listing."""

    def __init__(self, listings: pd.DataFrame):
        self.listings = listings
        ratings = rate(listings["asking_price"], listings["lower_price"], listings["predicted_price"],
                       listings["upper_price"]) if len(listings) else []
        records = [{"url": r.url, "title": r.title, "model_year": _plain(r.model_year),
                    "mileage_km": _plain(r.mileage_km), "fuel": _plain(r.fuel), "region": _plain(r.region),
                    "model_key": r.model_key, "asking_price": _plain(r.asking_price),
                    "predicted_price": _plain(r.predicted_price), "rating": rating}
                   for r, rating in zip(listings.itertuples(), ratings)]
        self._by_make: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, list[dict]]] = {}
        for make, rows in listings.groupby("make_key").indices.items():
            self._by_make[make] = (listings["model_key"].to_numpy()[rows].astype(str),
                                   listings["model_year"].to_numpy(dtype=float)[rows],
                                   listings["mileage_km"].to_numpy(dtype=float)[rows], [records[i] for i in rows])

    def nearest(self, make: str, model: str, model_year: float, mileage_km: float | None, n: int) -> list[dict]:
        """The ``n`` current listings nearest in age and mileage: the same model first, then the same make."""
        if key(make) not in self._by_make:
            return []
        models, years, km, records = self._by_make[key(make)]
        distance = np.nan_to_num(np.abs(years - model_year), nan=10.0)
        if mileage_km is not None and not np.isnan(mileage_km):
            distance += np.nan_to_num(np.abs(km - mileage_km), nan=10 * KM_PER_YEAR_OF_AGE) / KM_PER_YEAR_OF_AGE
        same = models == key(model)
        distance += np.where(same, 0.0, 1e6)  # the same model always first
        picked = np.argsort(distance, kind="stable")[:n]
        return [{**{k: v for k, v in records[i].items() if k != "model_key"}, "same_model": bool(same[i])}
                for i in picked]


def value_cars(model: PriceModel, knowledge: Knowledge, cars: Mapping[str, Sequence], as_of: pd.Timestamp, *,
               effects: bool = True, top: int = 6) -> list[dict]:
    """Value every described car in one vectorized pass: price, 90% interval, rating or why none, and (with
    ``effects``) the largest feature effects. ``cars`` maps CAR_FIELDS and ``asking_price`` to columns (a
    DataFrame or a dict of lists)."""
    features = request_features(cars, as_of)
    if effects:
        baseline, contributions = model.explain_log(features, num_threads=PREDICT_THREADS)
        log = baseline + contributions.to_numpy().sum(axis=1)
    else:
        log = model.predict_log(features, num_threads=PREDICT_THREADS)
    lower, predicted, upper = (np.exp(log + model.interval[0]), np.exp(log), np.exp(log + model.interval[1]))
    asking = features["market_price"]
    priced = ~np.isnan(asking)
    ratings = rate(np.where(priced, asking, predicted), lower, predicted, upper).tolist()
    reasons = [reason if has_price else "no asking price given"
               for reason, has_price in zip(no_rating_reasons(features, model, knowledge), priced.tolist())]
    explained = top_effects(baseline, contributions, features, top) if effects else None
    # Whole columns rounded and turned into Python numbers at once: per-row numpy scalars cost more than the model.
    columns = zip(np.round(predicted).tolist(), np.round(lower).tolist(), np.round(upper).tolist(),
                  np.where(priced, asking, np.nan).tolist(), ratings, reasons)
    out = [{"predicted_price": p, "interval_90": [lo, hi], "asking_price": a if a == a else None,
            "rating": None if reason else rating, "no_rating_reason": reason}
           for p, lo, hi, a, rating, reason in columns]
    if explained is not None:
        for answer, extra in zip(out, explained):
            answer.update(extra)
    return out
