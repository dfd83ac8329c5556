"""Hold out listings a model never trains on: by listing date when the dates can split the data, by first-seen time
across batches next, and at random by car last.

Pure functions of a features frame (``listed_at``, ``listed_at_stated``, ``first_seen_at``, ``listing_key``,
``car_key``); they import nothing from Dagster or DuckDB. Many real sites state no listing date (their listings carry
the crawl date) and a file import may have none, so no split assumes dates: each says why the one before it could not
be used, and the registry keeps that description beside the model.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

LISTING_DATE, FIRST_SEEN, GROUPED_RANDOM = "listing_date", "first_seen", "grouped_random"
TIME_COLUMNS = {LISTING_DATE: "listed_at", FIRST_SEEN: "first_seen_at"}
# False where the source stated no listing date and ``listed_at`` is only the day the listing was crawled.
STATED_COLUMN = "listed_at_stated"
# A car and its reposts under other URLs: held out or trained on together.
GROUP_COLUMN = "car_key"
SPLIT_SEED = 7
# The newest dated listings stand for the newest listings only when nearly all carry a date; the few undated
# ones train (nothing says they are new).
MIN_TIMED_SHARE = 0.9
# Times closer than this are one moment: one crawl or import takes minutes to hours, and listing dates are whole
# days apart, so a single crawl is never split by the order its pages were fetched in.
MOMENT_GAP = pd.Timedelta(hours=1)
# A time split may hold out half to twice the share asked for: less says too little about new listings, more
# starves the training set; outside that the next kind of split is used.
SHARE_TOLERANCE = (0.5, 2.0)
# The fewest rows either side of a time split may have: the judgement needs 30 evaluation rows.
MIN_SIDE_ROWS = 30


class CannotSplit(ValueError):
    """A time axis that cannot split the data, with the reason."""


@dataclass(frozen=True)
class Split:
    """How a frame was split into training and held-out rows, as the registry records it."""

    kind: str
    holdout_fraction: float
    n_train: int
    n_holdout: int
    # Time splits: the time column and the moment from which rows were held out.
    time_column: str | None = None
    cutoff: pd.Timestamp | None = None
    # Grouped random splits: the column whose groups stay on one side, and the seed of the hash that orders them.
    group_column: str | None = None
    seed: int | None = None
    # Why the kinds before this one could not split the data ("" for a listing-date split).
    why: str = ""

    @property
    def by_listing_date(self) -> bool:
        return self.kind == LISTING_DATE

    def to_dict(self) -> dict:
        """JSON-ready description (the cutoff as ISO text)."""
        return {**asdict(self), "cutoff": None if self.cutoff is None else self.cutoff.isoformat()}

    @classmethod
    def from_dict(cls, data: dict) -> Split:
        """The split a registry entry describes."""
        fields = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        cutoff = fields.get("cutoff")
        return cls(**{**fields, "cutoff": None if cutoff is None else pd.Timestamp(cutoff)})

    def summary(self) -> str:
        """One line: which rows were held out, and why not by listing date."""
        if self.kind == GROUPED_RANDOM:
            held = (f"{self.n_holdout} listings held out at random by car (seeded hash of {self.group_column}, "
                    f"seed {self.seed})")
        else:
            held = f"{self.n_holdout} listings {_since(self.kind, self.cutoff)} held out"
        return held + (f", because {self.why}" if self.why else "")


def _since(kind: str, cutoff: pd.Timestamp) -> str:
    if kind == LISTING_DATE:
        return f"listed on or after {cutoff.date()}"
    return f"first seen on or after {cutoff:%Y-%m-%d %H:%M}"


def split_times(df: pd.DataFrame, kind: str) -> pd.Series:
    """Each row's time on the axis of ``kind``: listing dates only where the source stated them; NaT when unknown."""
    column = TIME_COLUMNS[kind]
    if column not in df:
        return pd.Series(pd.NaT, index=df.index, dtype="datetime64[ns]")
    times = pd.to_datetime(df[column])
    if kind == LISTING_DATE and STATED_COLUMN in df:
        times = times.where(df[STATED_COLUMN].fillna(False).astype(bool))
    return times


def moment_starts(times: pd.Series) -> np.ndarray:
    """The start of each moment among ``times`` (sorted): a moment ends where the next time is MOMENT_GAP later."""
    distinct = np.unique(times.dropna().to_numpy())
    if len(distinct) == 0:
        return distinct
    return distinct[np.r_[True, np.diff(distinct) > MOMENT_GAP.to_timedelta64()]]


def time_cutoff(times: pd.Series, fraction: float, min_rows: int = MIN_SIDE_ROWS) -> pd.Timestamp:
    """The moment from which the newest rows, closest to ``fraction`` of all, are held out.

    Raises CannotSplit with the reason when too few rows have a time, all times are one moment, or no moment
    leaves both sides within SHARE_TOLERANCE of the asked share and at least ``min_rows`` rows.
    """
    n, timed = len(times), int(times.notna().sum())
    if timed == 0:
        raise CannotSplit("no listing has one")
    if timed < MIN_TIMED_SHARE * n:
        raise CannotSplit(f"only {timed} of {n} listings have one")
    starts = moment_starts(times)
    if len(starts) < 2:
        raise CannotSplit(f"all {timed} are the same ({pd.Timestamp(starts[0]):%Y-%m-%d %H:%M})")
    ordered = np.sort(times.dropna().to_numpy())
    held = timed - np.searchsorted(ordered, starts[1:], side="left")
    # The moment whose holdout is closest to the asked share; on a tie the later one, which trains on more.
    best = len(held) - 1 - int(np.argmin(np.abs(held[::-1] / n - fraction)))
    share, low, high = held[best] / n, fraction * SHARE_TOLERANCE[0], fraction * SHARE_TOLERANCE[1]
    if not low <= share <= high or min(held[best], n - held[best]) < min_rows:
        raise CannotSplit(f"their {len(starts)} distinct moments cannot hold out {fraction:.0%} of {n} listings "
                          f"(the nearest holds out {held[best]}, {share:.0%}; a holdout needs {low:.0%}-{high:.0%} "
                          f"and {min_rows} rows each side)")
    return pd.Timestamp(starts[best + 1])


def grouped_random_holdout(groups: pd.Series, fraction: float, seed: int = SPLIT_SEED) -> pd.Series:
    """True for the rows of whole groups, taken in the order of a seeded hash of their key until ``fraction`` of
    the rows are held out.

    The hash, not a draw, decides: the same car falls on the same side in every model trained with the seed, so
    successive models hold out mostly the same cars and both can be judged on the cars neither trained on.
    """
    keys = groups.astype("string").fillna(pd.Series(groups.index.astype(str), index=groups.index))
    codes, uniques = pd.factorize(keys, sort=True)
    if len(uniques) < 2:
        raise ValueError(f"cannot split {len(groups)} rows at random by {groups.name}: they hold {len(uniques)} "
                         "group(s), and each side needs one")
    hashes = pd.util.hash_pandas_object(pd.Series(uniques), index=False, hash_key=f"{seed:016d}").to_numpy()
    # Stable on keys sorted by factorize: equal hashes (vanishingly rare) fall back to key order.
    order = np.argsort(hashes, kind="stable")
    sizes = np.bincount(codes, minlength=len(uniques))[order]
    # Groups before the one that reaches the target, and that one: at least one group stays on each side.
    taken = np.cumsum(sizes) - sizes < max(1, round(fraction * len(groups)))
    taken[-1] = False
    chosen = np.zeros(len(uniques), dtype=bool)
    chosen[order] = taken
    return pd.Series(chosen[codes], index=groups.index)


def holdout_share(df: pd.DataFrame, fraction: float, max_days: int | None, min_rows: int) -> float:
    """``fraction``, or less: the share of the listings of the newest ``max_days`` on the first time axis that can
    split the data, raised to ``min_rows`` rows. Without a time axis (or ``max_days``), ``fraction``."""
    if not max_days:
        return fraction
    for kind in (LISTING_DATE, FIRST_SEEN):
        times = split_times(df, kind)
        try:
            time_cutoff(times, fraction)
        except CannotSplit:
            continue
        newest = times.max()
        in_window = int((times > newest - pd.Timedelta(days=max_days)).sum())
        share = min(fraction, max(in_window, min_rows) / len(df))
        # The smaller share must split on this same axis (split_holdout tries listing dates first), else the share
        # asked for: never a random split, or another axis, where this one could split.
        try:
            time_cutoff(times, share)
        except CannotSplit:
            return fraction
        if kind == FIRST_SEEN:
            try:
                time_cutoff(split_times(df, LISTING_DATE), share)
            except CannotSplit:
                return share
            return fraction
        return share
    return fraction


def split_holdout(df: pd.DataFrame, holdout_fraction: float, *, min_rows: int = MIN_SIDE_ROWS,
                  seed: int = SPLIT_SEED) -> tuple[pd.DataFrame, pd.DataFrame, Split]:
    """Training rows, held-out rows and how they were split: by listing date, else first-seen time, else grouped
    random."""
    if not 0 < holdout_fraction < 1:
        raise ValueError(f"holdout_fraction must be between 0 and 1, got {holdout_fraction}")
    refusals = []
    for kind in (LISTING_DATE, FIRST_SEEN):
        times = split_times(df, kind)
        try:
            cutoff = time_cutoff(times, holdout_fraction, min_rows)
        except CannotSplit as exc:
            refusals.append(f"({exc})")
            continue
        held = times >= cutoff
        return df[~held], df[held], Split(kind, holdout_fraction, int((~held).sum()), int(held.sum()),
                                          time_column=TIME_COLUMNS[kind], cutoff=cutoff, why=_why(refusals))
    held = grouped_random_holdout(df[GROUP_COLUMN], holdout_fraction, seed)
    return df[~held], df[held], Split(GROUPED_RANDOM, holdout_fraction, int((~held).sum()), int(held.sum()),
                                      group_column=GROUP_COLUMN, seed=seed, why=_why(refusals))


def _why(refusals: list[str]) -> str:
    """The refusals of the time axes tried, in order, as one clause."""
    clauses = [f"listing dates could not split the data {refusals[0]}" if refusals else "",
               f"nor could first-seen times {refusals[1]}" if len(refusals) > 1 else ""]
    return "; ".join(c for c in clauses if c)


def never_trained_on(data: pd.DataFrame, split: Split, trained_at: pd.Timestamp,
                     held_out_keys: set[str] | None = None) -> pd.Series:
    """True for rows a model cannot have trained on: those its split held out, and listings first seen after it was
    trained.

    A grouped random split is known by the listing keys it held out (``held_out_keys``); without them only the
    listings that arrived later count. A row with no time on a time split's axis counts as trained on.
    """
    if split.kind == GROUPED_RANDOM:
        held = data["listing_key"].isin(held_out_keys or set())
    else:
        held = (split_times(data, split.kind) >= split.cutoff).fillna(False)
    arrived = split_times(data, FIRST_SEEN) > as_naive_utc(trained_at)
    return (held | arrived).astype(bool)


def as_naive_utc(moment: pd.Timestamp) -> pd.Timestamp:
    """``moment`` in UTC without a zone, as the frame's times are."""
    moment = pd.Timestamp(moment)
    return moment.tz_convert("UTC").tz_localize(None) if moment.tzinfo else moment
