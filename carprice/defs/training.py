"""Stage 4: features, a challenger trained on admitted data, and the champion chosen on fresh data."""

import math

import dagster as dg

from carprice.config import MonitoringConfig, PromotionConfig
from carprice.defs.cleaning import clean_listings
from carprice.defs.metadata import (
    OWNERS,
    key_value_table,
    known,
    layer,
    markdown_table,
    money_text,
    percent,
    percent_text,
    table_metadata,
    whole_amount,
)
from carprice.defs.resources import ModelStoreResource, WarehouseResource
from carprice.money.rates import BASE
from carprice.monitoring.retraining import TRIGGER_REASON_TAG
from carprice.training import modeling, store
from carprice.training.challenger import train_challenger
from carprice.training.features import build_features
from carprice.training.modeling import INTERVAL_COVERAGE
from carprice.training.overview import coverage_flag
from carprice.training.promotion import PromotionResult, judge_challenger


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
        "columns": ", ".join(features.columns),
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
        "split_details": dg.MetadataValue.md(key_value_table({**trained.split.to_dict(),
                                                              "early_stopping": trained.model.early_stopping_split})),
        "train_cutoff": str(trained.split.cutoff) if trained.split.cutoff is not None else "none (random split)",
        "rounds": trained.model.params["num_boost_round"],
        **recipe_metadata(trained.model.params.get("recipe_selection")),
        # The 90% interval around a predicted price, as the conformal offsets of log price make it.
        "interval": interval_text(trained.model.interval),
        "train_batches": len(trained.train_batches),
        "trained_because": dg.MetadataValue.text(trained.trained_because),
        "superseded_challengers": ", ".join(trained.superseded) or "none",
        "code_version": trained.code_version,
        "artifact": dg.MetadataValue.path(str(trained.saved.path / "model.txt")),
        "top_features_by_gain": dg.MetadataValue.md(trained.top_features().round(0).rename("gain").to_frame()
                                                    .to_markdown()),
    })


def interval_text(offsets: tuple[float, float]) -> str:
    """The prediction interval's log-price offsets as the share of the predicted price they reach either side."""
    low, high = offsets
    return (f"{percent_text(math.exp(low) - 1, 0, signed=True)} / {percent_text(math.exp(high) - 1, 0, signed=True)}"
            " of the predicted price")


def recipe_metadata(selection: dict | None) -> dict:
    """The recipe search as the UI shows it: the chosen parameters and a table of every trial."""
    if not selection:
        return {"recipe": "fixed (selection off)"}
    rows = "\n".join(f"| {t['params']} | {t['validation_mae']:,.0f} | {100 * t['validation_median_ape']:.1f}% "
                     f"| {t['rounds']} |" for t in selection["trials"])
    chosen = {k: v for k, v in selection["chosen"].items() if k not in ("num_threads", "verbose", "seed")}
    header = "| recipe | validation MAE | median APE | rounds |\n|---|---|---|---|\n"
    return {"recipe": dg.MetadataValue.md(key_value_table(chosen)), "recipe_search": dg.MetadataValue.md(header + rows),
            "recipe_search_seconds": selection["seconds"]}


class PromotionRunConfig(dg.Config):
    """The promotion rule for this run (defaults: carprice.config.PromotionConfig)."""

    main_metric: str = PromotionConfig.main_metric
    min_relative_improvement: float = PromotionConfig.min_relative_improvement
    max_slice_regression: float = PromotionConfig.max_slice_regression
    min_slice_rows: int = PromotionConfig.min_slice_rows
    backtest_folds: int = PromotionConfig.backtest_folds


SCORE_COLUMNS = ["model", "MAE", "median abs % error", "MAPE", "R²", "90% interval covers", "n"]


def _score_row(name: str, overall: dict, currency: str) -> list:
    r2 = overall.get("r2")
    return [name, money_text(overall.get("mae"), currency), percent_text(overall.get("median_ape")),
            percent_text(overall.get("mape")), f"{r2:.3f}" if known(r2) else "n/a",
            percent_text(overall.get("interval_coverage"), 0), overall.get("n", "")]


def scores_table(scores: dict, currency: str = BASE) -> str:
    """The challenger, the champion and the baselines on the same evaluation rows, as Markdown."""
    rows = [_score_row(name, scores[name]["overall"], currency) for name in ("challenger", "champion")
            if name in scores]
    rows += [_score_row(f"baseline {name}", b["overall"], currency) for name, b in scores.get("baselines", {}).items()]
    return markdown_table(SCORE_COLUMNS, rows, right=range(1, 7)) if rows else "not scored"


def slices_table(scores: dict, metric: str = "median_ape", limit: int = 12, currency: str = BASE) -> str:
    """The slices both models were scored on, the challenger's biggest changes first, as Markdown."""
    challenger, champion = scores.get("challenger", {}).get("slices", {}), scores.get("champion", {}).get("slices", {})
    fmt = (lambda v: money_text(v, currency)) if metric == "mae" else percent_text
    rows = []
    for name, stats in challenger.items():
        base = champion.get(name)
        change = stats[metric] / base[metric] - 1 if base and base.get(metric) else None
        rows.append((abs(change) if change is not None else -1, [
            name, stats["n"], fmt(stats[metric]), fmt(base[metric]) if base else "n/a",
            percent_text(change, 0, signed=True)]))
    rows = [r for _, r in sorted(rows, key=lambda kv: -kv[0])[:limit]]
    label = "MAE" if metric == "mae" else "median abs % error"
    return markdown_table(["slice", "n", f"challenger {label}", f"champion {label}", "change"], rows,
                          right=[1, 2, 3, 4]) if rows else "no slices"


def decision_metadata(result: PromotionResult, coverage_tolerance: float = MonitoringConfig.coverage_tolerance,
                      main_metric: str = PromotionConfig.main_metric, currency: str = BASE) -> dict:
    """The judgement as the UI shows it: who serves and why first, then the scores as tables (the slices condensed),
    the serving model's numbers in the market currency and percent, and a flag when its interval covers far too few
    prices."""
    serving = result.scores.get("champion_after", {}).get("overall", {})
    metadata = {
        "promoted": result.promoted, "reason": dg.MetadataValue.text(result.reason),
        "champion": result.champion_after, "challenger": result.challenger, "n_eval": result.n_eval,
        "eval_from": str(result.eval_from.date()) if result.eval_from is not None else "not by listing date",
        "scores": dg.MetadataValue.md(scores_table(result.scores, currency)),
        "slices": dg.MetadataValue.md(slices_table(result.scores, main_metric, currency=currency)),
        "retraining_requests_served": result.requests_answered,
        "currency": currency,
    }
    if known(serving.get("mae")):
        metadata["champion_mae"] = whole_amount(serving["mae"])
    for key in ("median_ape", "mape", "interval_coverage"):
        if known(serving.get(key)):
            metadata[f"champion_{key}_pct"] = percent(serving[key])
    if known(serving.get("r2")):
        metadata["champion_r2"] = round(float(serving["r2"]), 3)
    if known(serving.get("interval_coverage")):
        flag = coverage_flag(float(serving["interval_coverage"]), INTERVAL_COVERAGE, coverage_tolerance)
        metadata["interval_coverage_check"] = flag or (f"ok: {percent_text(serving['interval_coverage'], 0)} "
                                                       f"covered, target {INTERVAL_COVERAGE:.0%}")
    for name, stats in result.scores.get("baselines", {}).items():
        metadata[f"baseline_{name}_mae"] = whole_amount(stats["overall"]["mae"])
    bare = result.scores.get("baselines", {}).get("bare_lightgbm", {}).get("overall", {}).get("mae")
    ours = result.scores.get("challenger", {}).get("overall", {}).get("mae")
    if bare and ours:
        # Relative: negative means the challenger's error is that much below a bare LightGBM's.
        metadata["challenger_vs_bare_lightgbm_mae"] = f"{ours / bare - 1:+.1%}"
    return metadata


def serving_scores(metadata: dict) -> dict:
    """The serving model's scores from a champion_model materialization (its metadata values) as plain numbers:
    mae, median_ape, r2 and interval_coverage (fractions) and n."""
    out = {"n": metadata.get("n_eval")}
    if "champion_mae" in metadata:
        out["mae"] = float(metadata["champion_mae"])
    if "champion_r2" in metadata:
        out["r2"] = float(metadata["champion_r2"])
    for key in ("median_ape", "mape", "interval_coverage"):
        if f"champion_{key}_pct" in metadata:
            out[key] = metadata[f"champion_{key}_pct"] / 100
    return out if "mae" in out else {}


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
    if rule.main_metric not in ("mae", "median_ape"):
        raise dg.Failure(f"main_metric must be mae or median_ape, got {rule.main_metric!r}")
    result = judge_challenger(wh, store.read_features(wh), rule)
    context.log.info("%s %s: %s", result.challenger, "promoted" if result.promoted else "rejected", result.reason)
    # The serving model's registry entry (artifact, batches, parameters) is on model_overview.
    return dg.MaterializeResult(metadata=decision_metadata(result, main_metric=rule.main_metric,
                                                           currency=warehouse.market_currency))
