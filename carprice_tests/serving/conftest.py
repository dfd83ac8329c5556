"""A real installation for the price API: clean listings from the simulated market, their features, a trained and
promoted champion, its valuations and deals, and the snapshot the API reads, published as the pipeline does."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import count
from pathlib import Path

import pandas as pd
import pytest

from carprice.config import Settings
from carprice.training import modeling
from carprice.training import store as training_store
from carprice.training.features import build_features
from carprice.training.registry import promote, register_challenger
from carprice.training.splitting import split_holdout
from carprice.valuation import store as valuation_store
from carprice.valuation.pricing import find_deals, value_listings
from carprice.warehouse import Warehouse
from carprice_tests.conftest import clean_frame_from_market

# Small, quick trees on one thread: the tests need a real champion, not a good one, and share two cores.
QUICK = {"num_threads": 1, "learning_rate": 0.3}
_clock = count()


@dataclass
class Installation:
    settings: Settings
    features: pd.DataFrame

    @property
    def warehouse(self) -> Warehouse:
        return Warehouse(self.settings.warehouse_path)


def clean_listings(n: int = 1500) -> pd.DataFrame:
    """Clean listings as the cleaning stage writes them, all on sale now."""
    clean = clean_frame_from_market(n, seed=5, day=40)
    return clean.assign(source="automarkt", batch_id="automarkt-1", last_seen_at=clean["first_seen_at"],
                        is_current=True, currency="EUR", properties=None, repost_of=None)


def build_installation(root: Path, n: int = 1500) -> Installation:
    """A warehouse with clean listings and their features, no model yet."""
    settings = Settings(data_dir=root / "data", dagster_home=root / "dagster_home")
    wh = Warehouse(settings.warehouse_path)
    clean = clean_listings(n)
    wh.replace_table("clean_listings", clean)
    features = build_features(clean)
    training_store.write_features(wh, features)
    return Installation(settings, features)


def train_and_promote(inst: Installation, params: dict | None = None, publish: bool = True,
                      share: float = 1.0) -> str:
    """Train a challenger on the rows before the holdout cutoff, promote it, value the current listings with it,
    list the deals and publish the snapshot, as a training run does; returns its version."""
    wh = inst.warehouse
    train, holdout, split = split_holdout(inst.features, 0.2)
    train = train.sample(frac=share, random_state=1) if share < 1 else train
    model = modeling.train_model(train, {**QUICK, **(params or {})})
    model.metrics = {"holdout": modeling.evaluate(model, holdout)}
    trained_at = datetime(2026, 6, 1, tzinfo=UTC) + timedelta(seconds=next(_clock))
    saved = modeling.save_model(model, inst.settings.models_dir, trained_at)
    register_challenger(wh, saved, trained_at=trained_at, train_batches=["automarkt-1"], code="test",
                        params=model.params, features=model.features, metrics=model.metrics, n_train=len(train),
                        n_holdout=len(holdout), train_cutoff=split.cutoff, split=split.to_dict())
    promote(wh, saved.version, "seeded for the test")
    valuations = value_listings(model, valuation_store.current_features(wh), saved.version)
    valuation_store.write_valuations(wh, valuations)
    valuation_store.write_deals(wh, find_deals(valuations, valuation_store.current_descriptions(wh)))
    if publish:
        wh.publish_snapshot(inst.settings.snapshot_path)
    return saved.version


@pytest.fixture(scope="module")
def installation(tmp_path_factory) -> Installation:
    """An installation with a champion and a published snapshot (shared by a module's read-only tests)."""
    inst = build_installation(tmp_path_factory.mktemp("serving"))
    train_and_promote(inst)
    return inst
