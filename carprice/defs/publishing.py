"""Stage 7: publish a read-only copy of the warehouse for analysts and the price API."""

from pathlib import Path

import dagster as dg

from carprice.analysts import sql_command
from carprice.defs.metadata import OWNERS, layer
from carprice.defs.monitoring import batch_monitoring
from carprice.defs.resources import WarehouseResource
from carprice.defs.valuation import deals


@dg.asset(
    deps=[deals, batch_monitoring],
    group_name="publishing",
    owners=OWNERS,
    tags=layer("published"),
    kinds={"duckdb"},
    pool="warehouse",
)
def warehouse_snapshot(warehouse: WarehouseResource) -> dg.MaterializeResult:
    """A consistent copy of the warehouse that readers open read-only without ever blocking a run."""
    target = warehouse.get().publish_snapshot(Path(warehouse.snapshot_path))
    return dg.MaterializeResult(metadata={
        "path": dg.MetadataValue.path(str(target)),
        "size_mb": round(target.stat().st_size / 1e6, 2),
        "open_with": sql_command(Path(warehouse.data_dir)),
    })
