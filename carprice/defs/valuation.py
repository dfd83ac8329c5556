"""Stage 5: the champion values every listing on sale, and the clear bargains are listed."""

import dagster as dg

from carprice.defs.metadata import OWNERS, layer, table_metadata
from carprice.defs.resources import WarehouseResource
from carprice.defs.training import champion_model, listing_features
from carprice.training.modeling import ModelArtifactError, load_model
from carprice.training.registry import NoChampionError, champion
from carprice.valuation import store
from carprice.valuation.pricing import deals_table, find_deals, no_valuations, value_listings


@dg.asset(
    deps=[champion_model, listing_features],
    group_name="valuation",
    owners=OWNERS,
    tags=layer("serving"),
    kinds={"duckdb", "lightgbm"},
    pool="warehouse",
)
def listing_valuations(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    """Predicted market price, with a 90% interval, of every current listing by the champion model."""
    wh = warehouse.get()
    try:
        serving = champion(wh)
    except NoChampionError:
        # Before the first model is promoted there is nothing to value with; the retraining sensor trains one.
        store.write_valuations(wh, no_valuations())
        context.log.warning("no champion model yet: no listing valued")
        return dg.MaterializeResult(metadata={"dagster/row_count": 0, "model_version": "none yet"})
    try:
        model = load_model(serving.artifact_path, expected_sha256=serving.sha256)
    except ModelArtifactError as exc:
        raise dg.Failure(str(exc)) from exc
    valuations = value_listings(model, store.current_features(wh), serving.version)
    store.write_valuations(wh, valuations)
    context.log.info("valued %d listings with %s", len(valuations), serving.version)
    inside = ((valuations["asking_price"] >= valuations["lower_price"])
              & (valuations["asking_price"] <= valuations["upper_price"]))
    return dg.MaterializeResult(metadata={
        **table_metadata(wh, "listing_valuations"),
        "model_version": serving.version,
        "median_price_ratio": round(float(valuations["price_ratio"].median()), 4) if len(valuations) else 0.0,
        "asking_inside_interval_share": round(float(inside.mean()), 4) if len(valuations) else 0.0,
    })


@dg.asset(
    deps=[listing_valuations],
    group_name="valuation",
    owners=OWNERS,
    tags=layer("serving"),
    kinds={"duckdb"},
    pool="warehouse",
)
def deals(warehouse: WarehouseResource) -> dg.MaterializeResult:
    """Listings asking below the lower end of their predicted interval, ranked by expected saving."""
    wh = warehouse.get()
    found = find_deals(store.read_valuations(wh), store.current_descriptions(wh))
    store.write_deals(wh, found)
    return dg.MaterializeResult(metadata={
        **table_metadata(wh, "deals"),
        "total_expected_saving_eur": round(float(found["saving"].sum()), 0) if len(found) else 0.0,
        "top_deals": dg.MetadataValue.md(deals_table(found.head(10)) if len(found) else "no deals today"),
    })
