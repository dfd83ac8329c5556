"""Stage 5: the serving model values every listing currently on sale."""

import dagster as dg

from carprice.defs.resources import WarehouseResource
from carprice.defs.training import listing_features, price_model
from carprice.modeling import ModelArtifactError, load_model
from carprice.registry import NoChampionError, champion
from carprice.valuation import value_listings


@dg.asset(deps=[price_model, listing_features], group_name="valuation", kinds={"duckdb", "lightgbm"},
          pool="warehouse")
def listing_valuations(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    """Predicted market price of every current listing by the champion model, beside its asking price."""
    wh = warehouse.get()
    try:
        serving = champion(wh)
        model = load_model(serving.artifact_path, expected_sha256=serving.sha256)
    except (NoChampionError, ModelArtifactError) as exc:
        raise dg.Failure(str(exc)) from exc
    current = wh.query(
        "SELECT f.* FROM listing_features f JOIN clean_listings c USING (url) WHERE c.is_current")
    valuations = value_listings(model, current, serving.version)
    wh.replace_table("listing_valuations", valuations)
    below = valuations[valuations["price_ratio"] < 0.8]
    context.log.info("valued %d listings with %s", len(valuations), serving.version)
    return dg.MaterializeResult(metadata={
        "dagster/row_count": len(valuations),
        "model_version": serving.version,
        "median_price_ratio": round(float(valuations["price_ratio"].median()), 4) if len(valuations) else 0.0,
        "asking_below_80pct_of_predicted": len(below),
    })
