"""Train a challenger on the admitted listings it does not hold out, save it with its drift reference, register it.

``train_challenger`` is the whole step the ``challenger_model`` asset runs; the judgement against the
champion is promotion's (``judge_challenger``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from carprice.monitoring.drift import REFERENCE_FILE, reference_sample
from carprice.training import modeling
from carprice.training.recipe import select_recipe
from carprice.training.registry import code_version, register_challenger, write_held_out_keys
from carprice.training.splitting import GROUPED_RANDOM, Split, holdout_share, split_holdout
from carprice.validation.store import admitted_batch_ids
from carprice.warehouse import Warehouse


@dataclass(frozen=True)
class TrainedChallenger:
    """A newly registered challenger and what it was trained from."""

    model: modeling.PriceModel
    saved: modeling.SavedModel
    n_train: int
    n_holdout: int
    split: Split
    train_batches: list[str]
    code_version: str
    trained_because: str
    superseded: list[str]

    def top_features(self, n: int = 10) -> pd.Series:
        """The features with the largest total gain in the trees."""
        return pd.Series(self.model.booster.feature_importance("gain"), index=self.model.features).nlargest(n)


def train_challenger(wh: Warehouse, features: pd.DataFrame, models_dir: Path, *, holdout_fraction: float,
                     params: dict, reference_rows: int, trained_because: str, select: bool = True,
                     holdout_days: int | None = None, holdout_min_rows: int = 0) -> TrainedChallenger:
    """Train on all but a held-out ``holdout_fraction`` (the newest listings when dates can tell, at most those of
    the newest ``holdout_days`` but ``holdout_min_rows`` or more), save, and register it as the challenger with how
    it was split.

    The open retraining requests are answered when it is judged (``judge_challenger``), not here: a run killed
    between training and judgement leaves them open for the next training.
    """
    share = holdout_share(features, holdout_fraction, holdout_days, holdout_min_rows)
    train, holdout, split = split_holdout(features, share)
    # The recipe is chosen on the training rows only: the held-out ones stay fresh for the judgement.
    choice = select_recipe(train, params) if select else None
    if choice is None:
        model = modeling.train_model(train, params)
    else:
        model = choice.model or modeling.train_model(train, choice.params)
        model.params["recipe_selection"] = choice.summary()
    # Scored on the fresh rows when it is judged beside the champion: not here, not twice.
    model.metrics = {"interval_log_offsets": list(model.interval)}
    trained_at = datetime.now(UTC)
    batches, code = admitted_batch_ids(wh), code_version()
    recorded = {**split.to_dict(), "early_stopping": model.early_stopping_split}
    saved = modeling.save_model(model, models_dir, trained_at, extra={
        "train_batches": batches, "code_version": code, "train_cutoff": str(split.cutoff), "split": recorded,
        "trained_because": trained_because})
    # The training rows later batches are compared with (not part of the model's checksum).
    reference_sample(train, reference_rows).to_parquet(saved.path / REFERENCE_FILE)
    if split.kind == GROUPED_RANDOM:
        # Without a time to tell them by, the judgement knows the held-out listings by their keys.
        write_held_out_keys(saved.path, holdout["listing_key"])
    superseded = register_challenger(
        wh, saved, trained_at=trained_at, train_batches=batches, code=code, params=model.params,
        features=model.features, metrics=model.metrics, n_train=len(train), n_holdout=len(holdout),
        train_cutoff=split.cutoff, split=recorded, trained_because=trained_because)
    return TrainedChallenger(model, saved, len(train), len(holdout), split, batches, code, trained_because,
                             superseded)
