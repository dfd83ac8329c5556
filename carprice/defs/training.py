"""Stage 4: features, a challenger trained on admitted data, and the champion chosen on fresh data."""

from datetime import UTC, datetime

import dagster as dg
import numpy as np
import pandas as pd

from carprice import modeling
from carprice.config import MonitoringConfig, PromotionConfig
from carprice.defs.cleaning import clean_listings
from carprice.defs.resources import ModelStoreResource, WarehouseResource
from carprice.features import build_features
from carprice.monitoring import REFERENCE_FILE, reference_sample
from carprice.promotion import evaluate_challenger
from carprice.registry import code_version, get_model, register_challenger
from carprice.retraining import TRIGGER_REASON_TAG, serve_retraining_requests
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


def read_features(warehouse: WarehouseResource) -> pd.DataFrame:
    # A fixed order: the same admitted data trains the same model, whatever order the crawl landed it in.
    features = warehouse.get().query("SELECT * FROM listing_features ORDER BY listed_at, url")
    features["listed_at"] = pd.to_datetime(features["listed_at"])
    return features


class TrainingConfig(dg.Config):
    """How the challenger is trained."""

    holdout_fraction: float = PromotionConfig.holdout_fraction
    learning_rate: float = modeling.DEFAULT_PARAMS["learning_rate"]
    num_leaves: int = modeling.DEFAULT_PARAMS["num_leaves"]
    min_data_in_leaf: int = modeling.DEFAULT_PARAMS["min_data_in_leaf"]


@dg.asset(deps=[listing_features], group_name="training", kinds={"lightgbm"}, pool="warehouse")
def challenger_model(context: dg.AssetExecutionContext, config: TrainingConfig, warehouse: WarehouseResource,
                     model_store: ModelStoreResource) -> dg.MaterializeResult:
    """LightGBM on log price, trained on admitted listings before a cutoff; registered as a challenger."""
    wh = warehouse.get()
    features = read_features(warehouse)
    train, holdout = modeling.split_by_time(features, config.holdout_fraction)
    model = modeling.train_model(train, {"learning_rate": config.learning_rate, "num_leaves": config.num_leaves,
                                         "min_data_in_leaf": config.min_data_in_leaf})
    # Scored on fresh rows by champion_model, beside the champion: not twice.
    model.metrics = {"interval_log_offsets": list(model.interval)}
    trained_at = datetime.now(UTC)
    batches = admitted_batch_ids(wh)
    code = code_version()
    cutoff = holdout["listed_at"].min()
    # Why this model exists: the retraining sensor tags its runs; anything else was asked for by a person.
    because = context.run.tags.get(TRIGGER_REASON_TAG, "requested by hand")
    saved = modeling.save_model(model, model_store.root, trained_at, extra={
        "train_batches": batches, "code_version": code, "train_cutoff": str(cutoff), "trained_because": because})
    # The training rows monitoring compares later batches with (not part of the model's checksum).
    reference_sample(train, MonitoringConfig().reference_rows).to_parquet(saved.path / REFERENCE_FILE)
    register_challenger(wh, saved, trained_at=trained_at, train_batches=batches, code=code, params=model.params,
                        features=model.features, metrics=model.metrics, n_train=len(train), n_holdout=len(holdout),
                        train_cutoff=cutoff, trained_because=because)
    served = serve_retraining_requests(wh, saved.version)
    importance = pd.Series(model.booster.feature_importance("gain"), index=model.features).nlargest(10)
    context.log.info("challenger %s trained on %d listings before %s", saved.version, len(train), cutoff.date())
    return dg.MaterializeResult(metadata={
        "version": saved.version,
        "n_train": len(train),
        "n_holdout": len(holdout),
        "train_cutoff": str(cutoff.date()),
        "rounds": model.params["num_boost_round"],
        "interval_log_offsets": dg.MetadataValue.json([round(x, 4) for x in model.interval]),
        "train_batches": len(batches),
        "trained_because": dg.MetadataValue.text(because),
        "retraining_requests_served": served,
        "code_version": code,
        "artifact": dg.MetadataValue.path(str(saved.path / "model.txt")),
        "top_features_by_gain": dg.MetadataValue.md(importance.round(0).rename("gain").to_frame().to_markdown()),
    })


class PromotionRunConfig(dg.Config):
    """The promotion rule for this run (defaults: carprice.config.PromotionConfig)."""

    main_metric: str = PromotionConfig.main_metric
    min_relative_improvement: float = PromotionConfig.min_relative_improvement
    max_slice_regression: float = PromotionConfig.max_slice_regression
    min_slice_rows: int = PromotionConfig.min_slice_rows
    backtest_folds: int = PromotionConfig.backtest_folds


@dg.asset(deps=[challenger_model], group_name="training", kinds={"lightgbm"}, pool="warehouse")
def champion_model(context: dg.AssetExecutionContext, config: PromotionRunConfig,
                   warehouse: WarehouseResource) -> dg.MaterializeResult:
    """The serving model: the challenger replaces it only when better on the same fresh data and servable."""
    wh = warehouse.get()
    rule = PromotionConfig(**config.model_dump())
    if rule.main_metric not in ("mae_eur", "median_ape"):
        raise dg.Failure(f"main_metric must be mae_eur or median_ape, got {rule.main_metric!r}")
    result = evaluate_challenger(wh, read_features(warehouse), rule)
    context.log.info("%s %s: %s", result.challenger, "promoted" if result.promoted else "rejected", result.reason)
    serving = result.scores.get("champion_after", {}).get("overall", {})
    metadata = {
        "champion": result.champion_after,
        "challenger": result.challenger,
        "promoted": result.promoted,
        "reason": dg.MetadataValue.text(result.reason),
        "n_eval": result.n_eval,
        "eval_from": str(pd.Timestamp(result.eval_from).date()),
        "scores": dg.MetadataValue.json(result.scores),
    }
    for key in ("mae_eur", "median_ape", "r2", "interval_coverage"):
        if key in serving and np.isfinite(serving[key]):
            metadata[f"champion_{key}"] = round(float(serving[key]), 4)
    for name, stats in result.scores.get("baselines", {}).items():
        metadata[f"baseline_{name}_mae_eur"] = round(float(stats["overall"]["mae_eur"]), 1)
    if result.champion_after:
        entry = get_model(wh, result.champion_after)
        metadata["registry_entry"] = dg.MetadataValue.json({
            "version": entry.version, "status": entry.status, "train_batches": entry.train_batches,
            "train_cutoff": str(entry.train_cutoff), "artifact": str(entry.artifact_path), "sha256": entry.sha256,
            "params": entry.params})
    return dg.MaterializeResult(metadata=metadata)
