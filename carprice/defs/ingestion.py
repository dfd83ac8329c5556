"""Stage 2: copy one landed batch into the warehouse's raw tables, unchanged."""

import dagster as dg

from carprice.defs.partitions import batch_partitions
from carprice.defs.resources import LandingZoneResource, WarehouseResource
from carprice.defs.scraping import scraped_batch
from carprice.landing import BatchError, find_batch


@dg.asset(
    partitions_def=batch_partitions,
    deps=[dg.AssetDep(scraped_batch, partition_mapping=dg.AllPartitionMapping())],
    group_name="ingestion",
    kinds={"duckdb"},
    pool="warehouse",
)
def raw_listings(context: dg.AssetExecutionContext, warehouse: WarehouseResource,
                 landing_zone: LandingZoneResource) -> dg.MaterializeResult:
    """Listings and rejects of one batch exactly as scraped, tagged with the batch id."""
    try:
        batch = find_batch(landing_zone.root, context.partition_key)
    except BatchError as exc:
        raise dg.Failure(str(exc)) from exc
    counts = warehouse.get().ingest_batch(batch)
    top = warehouse.get().query(
        "SELECT reason, count(*) AS n FROM raw_rejects WHERE batch_id = ? GROUP BY reason ORDER BY n DESC LIMIT 10",
        [batch.batch_id])
    return dg.MaterializeResult(metadata={
        "batch_id": batch.batch_id,
        "source": batch.source,
        "dagster/row_count": counts["listings"],
        "rejects": counts["rejects"],
        "top_reject_reasons": dg.MetadataValue.md(top.to_markdown(index=False) if not top.empty else "none"),
    })
