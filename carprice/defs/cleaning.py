"""Stage 3: one clean row per listing across all batches; excluded rows keep their reason."""

import dagster as dg
import pandas as pd

from carprice.cleaning import store
from carprice.cleaning.rules import clean_observations, reason_counts
from carprice.defs.ingest import admitted_batch
from carprice.defs.metadata import OWNERS, layer, table_metadata
from carprice.defs.resources import WarehouseResource
from carprice.money.rates import RatesError


@dg.asset(
    deps=[admitted_batch],
    group_name="cleaning",
    owners=OWNERS,
    tags=layer("clean"),
    kinds={"duckdb", "pandas"},
    pool="warehouse",
)
def clean_listings(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    """Deduplicated listings of admitted batches; absurd values go to excluded_listings, reposts name their car's
    newest post."""
    wh = warehouse.get()
    try:
        money = warehouse.money()
    except RatesError as exc:
        raise dg.Failure(str(exc)) from exc
    raw = store.admitted_raw_listings(wh, money)
    clean, excluded = clean_observations(raw, store.latest_admitted_batches(wh),
                                         today=pd.Timestamp.now(tz="UTC").tz_localize(None),
                                         currency=money.currency, price_range=money.price_range)
    store.write_clean(wh, clean, excluded)
    reasons = reason_counts(excluded)
    context.log.info("clean: %d, excluded: %d %s", len(clean), len(excluded), reasons)
    return dg.MaterializeResult(metadata={
        **table_metadata(wh, "clean_listings"),
        "raw_observations": len(raw),
        "admitted_batches": int(raw["batch_id"].nunique()) if len(raw) else 0,
        "current_listings": int(clean["is_current"].sum()) if len(clean) else 0,
        "market_currency": money.currency,
        "excluded": len(excluded),
        # What repost detection takes out of training (the listings stay, valued under their own URLs).
        "reposts": int(clean["repost_of"].notna().sum()) if len(clean) else 0,
        "excluded_by_reason": dg.MetadataValue.json(reasons),
    })
