"""Stage 4: features from clean listings, and a LightGBM price model trained and registered on them."""

from datetime import UTC, datetime

import dagster as dg
import pandas as pd

from carprice import modeling
from carprice.defs.cleaning import clean_listings
from carprice.defs.resources import ModelStoreResource, WarehouseResource
from carprice.features import build_features
from carprice.registry import code_version, register_champion
from carprice.validation.admission import admitted_batch_ids


@dg.asset(deps=[clean_listings], group_name="training", kinds={"duckdb", "pandas"}, pool="warehouse")
def listing_features(warehouse: WarehouseResource) -> dg.MaterializeResult:
    """Model features of every clean listing: structured fields, age, mileage per year, text flags."""
    wh = warehouse.get()
    features = build_features(wh.query("SELECT * FROM clean_listings"))
    wh.replace_table("listing_features", features)
    return dg.MaterializeResult(metadata={
        "dagster/row_count": len(features),
        "columns": dg.MetadataValue.json(list(features.columns)),
    })


class TrainingConfig(dg.Config):
    """How the price model is trained and evaluated."""

    holdout_fraction: float = 0.2
    learning_rate: float = modeling.DEFAULT_PARAMS["learning_rate"]
    num_leaves: int = modeling.DEFAULT_PARAMS["num_leaves"]


@dg.asset(deps=[listing_features], group_name="training", kinds={"lightgbm"}, pool="warehouse")
def price_model(context: dg.AssetExecutionContext, config: TrainingConfig, warehouse: WarehouseResource,
                model_store: ModelStoreResource) -> dg.MaterializeResult:
    """LightGBM on log price, trained on older listings, scored on the newest, saved as text and registered."""
    wh = warehouse.get()
    features = wh.query("SELECT * FROM listing_features")
    features["listed_at"] = pd.to_datetime(features["listed_at"])
    train, holdout = modeling.split_by_time(features, config.holdout_fraction)
    model = modeling.train_model(train, {"learning_rate": config.learning_rate, "num_leaves": config.num_leaves})
    model.metrics = {"holdout": modeling.evaluate(model, holdout), "train": modeling.evaluate(model, train)}
    trained_at = datetime.now(UTC)
    batches = admitted_batch_ids(wh)
    code = code_version()
    saved = modeling.save_model(model, model_store.root, trained_at,
                                extra={"train_batches": batches, "code_version": code,
                                       "holdout_from": str(holdout["listed_at"].min())})
    register_champion(wh, saved, trained_at=trained_at, train_batches=batches, code=code, params=model.params,
                      features=model.features, metrics=model.metrics, n_train=len(train), n_holdout=len(holdout))
    m = model.metrics["holdout"]
    importance = pd.Series(model.booster.feature_importance("gain"), index=model.features).nlargest(10)
    context.log.info("model %s holdout %s", saved.version, m)
    return dg.MaterializeResult(metadata={
        "version": saved.version,
        "holdout_mae_eur": round(m["mae_eur"], 1),
        "holdout_median_ape": round(m["median_ape"], 4),
        "holdout_r2": round(m["r2"], 4),
        "n_train": len(train),
        "n_holdout": len(holdout),
        "rounds": model.params["num_boost_round"],
        "train_batches": len(batches),
        "code_version": code,
        "artifact": dg.MetadataValue.path(str(saved.path / "model.txt")),
        "top_features_by_gain": dg.MetadataValue.md(
            importance.round(0).rename("gain").to_frame().to_markdown()),
    })
