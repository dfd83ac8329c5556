"""Property features: what a source publishes on most of its listings becomes columns a model can use."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from carprice.training import modeling
from carprice.training.features import FEATURES, build_features, model_features
from carprice_tests.conftest import clean_frame_from_market

# Large steps: the tests are about which columns a model has, not how good it is.
FAST = {"learning_rate": 0.3, "num_threads": 1}


def with_properties(clean: pd.DataFrame, seed: int = 1) -> pd.DataFrame:
    """``clean`` from a classifieds source whose pages state title status, cylinders, drive, size and a VIN;
    a salvage title costs a third of the price."""
    rng = np.random.default_rng(seed)
    title = rng.choice(["Clean", "Salvage", "Rebuilt"], size=len(clean), p=[0.8, 0.1, 0.1])
    props = [{"title_status": t, "cylinders": f"{c} cylinders", "drive": d, "size": s, "vin": f"VIN{i}"}
             for i, (t, c, d, s) in enumerate(zip(title, rng.choice([4, 6, 8], len(clean)),
                                                  rng.choice(["FWD", "4x4", "AWD"], len(clean)),
                                                  rng.choice(["compact", "full-size"], len(clean))))]
    # A key on a few listings only is not a feature.
    for p in props[:10]:
        p["warranty"] = "yes"
    price = clean["market_price"] * np.where(title == "Salvage", 0.66, 1.0)
    return clean.assign(source="classifieds", properties=[json.dumps(p) for p in props], market_price=price.round())


def test_properties_a_source_publishes_become_columns_known_ones_normalized():
    features = build_features(with_properties(clean_frame_from_market(200, seed=3)))
    assert {"title_status", "cylinders", "drive", "prop_size"} <= set(features.columns)
    # A VIN has a value per listing and "warranty" is on 10 of 200: neither is a category.
    assert "prop_vin" not in features.columns and "prop_warranty" not in features.columns
    assert set(features["title_status"].dropna()) == {"clean", "salvage", "rebuilt"}
    assert set(features["drive"].dropna()) == {"fwd", "4wd", "awd"}
    assert set(features["cylinders"]) == {4.0, 6.0, 8.0}
    assert model_features(features) == FEATURES + ["title_status", "drive", "cylinders", "prop_size"]


def test_listings_without_properties_keep_the_fixed_features():
    features = build_features(clean_frame_from_market(200, seed=3))
    assert model_features(features) == FEATURES


def test_a_model_learns_the_properties_and_predicts_on_frames_without_them():
    features = build_features(with_properties(clean_frame_from_market(700, seed=3)))
    model = modeling.train_model(features, FAST)
    assert {"title_status", "cylinders", "drive", "prop_size"} <= set(model.features)
    assert model.categories["title_status"] == ["clean", "rebuilt", "salvage"]
    gain = pd.Series(model.booster.feature_importance("gain"), index=model.features)
    assert gain["title_status"] > 0
    # A request or a site without the properties: the columns read as missing, not as an error.
    bare = features.drop(columns=["title_status", "cylinders", "drive", "prop_size"])
    assert np.isfinite(model.predict_price(bare)).all()
    # A model trained before properties existed predicts on frames that now carry them.
    old = modeling.train_model(features, FAST, features=FEATURES)
    assert old.features == FEATURES
    assert np.isfinite(old.predict_price(features)).all()
