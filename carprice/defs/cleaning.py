"""Stage 3: one clean row per listing across all batches; excluded rows keep their reason."""

import dagster as dg
import pandas as pd

from carprice import cleaning
from carprice.defs.ingestion import raw_listings
from carprice.defs.resources import WarehouseResource


@dg.asset(deps=[raw_listings], group_name="cleaning", kinds={"duckdb", "pandas"}, pool="warehouse")
def clean_listings(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    """Deduplicated listings of admitted batches; absurd values and reposts go to excluded_listings."""
    wh = warehouse.get()
    # Only admitted batches: a quarantined batch never reaches cleaning, features or training.
    raw = wh.query("SELECT r.* FROM raw_listings r JOIN batch_status s USING (batch_id) "
                   "WHERE s.status IN ('accepted', 'readmitted')")
    latest = wh.query("SELECT b.source, arg_max(b.batch_id, b.started_at) AS batch_id FROM batches b "
                      "JOIN batch_status s USING (batch_id) WHERE s.status IN ('accepted', 'readmitted') "
                      "GROUP BY b.source")
    clean, excluded = cleaning.clean_listings(raw, dict(zip(latest["source"], latest["batch_id"])),
                                              today=pd.Timestamp.now(tz="UTC").tz_localize(None))
    wh.replace_table("clean_listings", clean)
    wh.replace_table("excluded_listings", excluded)
    reasons = cleaning.reason_counts(excluded)
    context.log.info("clean: %d, excluded: %d %s", len(clean), len(excluded), reasons)
    return dg.MaterializeResult(metadata={
        "dagster/row_count": len(clean),
        "raw_observations": len(raw),
        "admitted_batches": int(raw["batch_id"].nunique()) if len(raw) else 0,
        "current_listings": int(clean["is_current"].sum()) if len(clean) else 0,
        "excluded": len(excluded),
        "excluded_by_reason": dg.MetadataValue.json(reasons),
    })
