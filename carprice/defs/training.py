"""Stage 4: features, a challenger trained on admitted data, and the champion chosen on fresh data."""

import dagster as dg
import numpy as np

from carprice.config import MonitoringConfig, PromotionConfig
from carprice.defs.cleaning import clean_listings
from carprice.defs.metadata import OWNERS, layer, table_metadata
from carprice.defs.resources import ModelStoreResource, WarehouseResource
from carprice.monitoring.retraining import TRIGGER_REASON_TAG
from carprice.training import modeling, store
from carprice.training.challenger import train_challenger
from carprice.training.features import build_features
from carprice.training.promotion import PromotionResult, judge_challenger
from carprice.training.registry import get_model


@dg.asset(
    deps=[clean_listings],
    group_name="training",
    owners=OWNERS,
    tags=layer("features"),
    kinds={"duckdb", "pandas"},
    pool="warehouse",
)
def listing_features(warehouse: WarehouseResource) -> dg.MaterializeResult:
    """Model features of every clean listing: structured fields, age, mileage per year, text flags."""
    wh = warehouse.get()
    features = build_features(store.read_clean_listings(wh))
    store.write_features(wh, features)
    # Versioned by content: a rebuild that changes no row (a refresh, a re-run) leaves the challenger trained on
    # them up to date, where Dagster would otherwise take every materialization for new data.
    return dg.MaterializeResult(metadata={
        **table_metadata(wh, "listing_features"),
        "columns": dg.MetadataValue.json(list(features.columns)),
    }, data_version=dg.DataVersion(store.features_version(wh)))


class TrainingConfig(dg.Config):
    """How the challenger is trained."""

    holdout_fraction: float = PromotionConfig.holdout_fraction
    holdout_days: int = PromotionConfig.holdout_days
    holdout_min_rows: int = PromotionConfig.holdout_min_rows
    learning_rate: float = modeling.DEFAULT_PARAMS["learning_rate"]
    num_leaves: int = modeling.DEFAULT_PARAMS["num_leaves"]
    min_data_in_leaf: int = modeling.DEFAULT_PARAMS["min_data_in_leaf"]
    # Choose the recipe among candidates around these values on the admitted data (carprice.training.recipe).
    select_recipe: bool = True


@dg.asset(
    deps=[listing_features],
    group_name="training",
    owners=OWNERS,
    tags=layer("model"),
    kinds={"lightgbm"},
    pool="warehouse",
)
def challenger_model(context: dg.AssetExecutionContext, config: TrainingConfig, warehouse: WarehouseResource,
                     model_store: ModelStoreResource) -> dg.MaterializeResult:
    """LightGBM on log price, trained on admitted listings it does not hold out; registered as a challenger."""
    wh = warehouse.get()
    # Why this model exists: the retraining sensor tags its runs; anything else was asked for by a person.
    trained = train_challenger(
        wh, store.read_features(wh), model_store.root, holdout_fraction=config.holdout_fraction,
        params={"learning_rate": config.learning_rate, "num_leaves": config.num_leaves,
                "min_data_in_leaf": config.min_data_in_leaf},
        reference_rows=MonitoringConfig().reference_rows, select=config.select_recipe,
        holdout_days=config.holdout_days, holdout_min_rows=config.holdout_min_rows,
        trained_because=context.run.tags.get(TRIGGER_REASON_TAG, "requested by hand"))
    context.log.info("challenger %s trained on %d listings; %s", trained.saved.version, trained.n_train,
                     trained.split.summary())
    return dg.MaterializeResult(metadata={
        "version": trained.saved.version,
        "n_train": trained.n_train,
        "n_holdout": trained.n_holdout,
        # Which split held the rows out: by listing date when the dates allow, else first-seen time or random by car.
        "split": trained.split.kind,
        "split_description": dg.MetadataValue.text(trained.split.summary()),
        "split_details": dg.MetadataValue.json({**trained.split.to_dict(),
                                                "early_stopping": trained.model.early_stopping_split}),
        "train_cutoff": str(trained.split.cutoff) if trained.split.cutoff is not None else "none (random split)",
        "rounds": trained.model.params["num_boost_round"],
        **recipe_metadata(trained.model.params.get("recipe_selection")),
        "interval_log_offsets": dg.MetadataValue.json([round(x, 4) for x in trained.model.interval]),
        "train_batches": len(trained.train_batches),
        "trained_because": dg.MetadataValue.text(trained.trained_because),
        "superseded_challengers": dg.MetadataValue.json(trained.superseded),
        "code_version": trained.code_version,
        "artifact": dg.MetadataValue.path(str(trained.saved.path / "model.txt")),
        "top_features_by_gain": dg.MetadataValue.md(trained.top_features().round(0).rename("gain").to_frame()
                                                    .to_markdown()),
    })


def recipe_metadata(selection: dict | None) -> dict:
    """The recipe search as the UI shows it: the chosen parameters and a table of every trial."""
    if not selection:
        return {"recipe": "fixed (selection off)"}
    rows = "\n".join(f"| {t['params']} | {t['validation_mae_eur']:,.0f} | {100 * t['validation_median_ape']:.1f}% "
                     f"| {t['rounds']} |" for t in selection["trials"])
    chosen = {k: v for k, v in selection["chosen"].items() if k not in ("num_threads", "verbose", "seed")}
    header = "| recipe | validation MAE | median APE | rounds |\n|---|---|---|---|\n"
    return {"recipe": dg.MetadataValue.json(chosen), "recipe_search": dg.MetadataValue.md(header + rows),
            "recipe_search_seconds": selection["seconds"]}


class PromotionRunConfig(dg.Config):
    """The promotion rule for this run (defaults: carprice.config.PromotionConfig)."""

    main_metric: str = PromotionConfig.main_metric
    min_relative_improvement: float = PromotionConfig.min_relative_improvement
    max_slice_regression: float = PromotionConfig.max_slice_regression
    min_slice_rows: int = PromotionConfig.min_slice_rows
    backtest_folds: int = PromotionConfig.backtest_folds


def decision_metadata(result: PromotionResult) -> dict:
    """The judgement as the UI shows it: who serves, why, and the serving model's scores beside the baselines'."""
    serving = result.scores.get("champion_after", {}).get("overall", {})
    metadata = {
        "champion": result.champion_after, "challenger": result.challenger, "promoted": result.promoted,
        "reason": dg.MetadataValue.text(result.reason), "n_eval": result.n_eval,
        "retraining_requests_served": result.requests_answered,
        "eval_from": str(result.eval_from.date()) if result.eval_from is not None else "not by listing date",
        "scores": dg.MetadataValue.json(result.scores),
    }
    for key in ("mae_eur", "median_ape", "r2", "interval_coverage"):
        if key in serving and np.isfinite(serving[key]):
            metadata[f"champion_{key}"] = round(float(serving[key]), 4)
    for name, stats in result.scores.get("baselines", {}).items():
        metadata[f"baseline_{name}_mae_eur"] = round(float(stats["overall"]["mae_eur"]), 1)
    bare = result.scores.get("baselines", {}).get("bare_lightgbm", {}).get("overall", {}).get("mae_eur")
    ours = result.scores.get("challenger", {}).get("overall", {}).get("mae_eur")
    if bare and ours:
        # Relative: negative means the challenger's error is that much below a bare LightGBM's.
        metadata["challenger_vs_bare_lightgbm_mae"] = f"{ours / bare - 1:+.1%}"
    return metadata


@dg.asset(
    deps=[challenger_model],
    group_name="training",
    owners=OWNERS,
    tags=layer("model"),
    kinds={"lightgbm"},
    pool="warehouse",
)
def champion_model(context: dg.AssetExecutionContext, config: PromotionRunConfig,
                   warehouse: WarehouseResource) -> dg.MaterializeResult:
    """The serving model: the challenger replaces it only when better on the same fresh data and servable."""
    wh = warehouse.get()
    rule = PromotionConfig(**config.model_dump())
    if rule.main_metric not in ("mae_eur", "median_ape"):
        raise dg.Failure(f"main_metric must be mae_eur or median_ape, got {rule.main_metric!r}")
    result = judge_challenger(wh, store.read_features(wh), rule)
    context.log.info("%s %s: %s", result.challenger, "promoted" if result.promoted else "rejected", result.reason)
    metadata = decision_metadata(result)
    if result.champion_after:
        entry = get_model(wh, result.champion_after)
        metadata["registry_entry"] = dg.MetadataValue.json({
            "version": entry.version, "status": entry.status, "train_batches": entry.train_batches,
            "train_cutoff": str(entry.train_cutoff), "split": entry.split.to_dict(),
            "artifact": str(entry.artifact_path), "sha256": entry.sha256, "params": entry.params})
    return dg.MaterializeResult(metadata=metadata)
