"""Stage 7: publish a read-only copy of the warehouse for analysts and the price API, and the current model's view."""

from pathlib import Path

import dagster as dg

from carprice.analysts import sql_command
from carprice.config import MonitoringConfig
from carprice.defs.metadata import (
    OWNERS,
    known,
    layer,
    markdown_table,
    money_text,
    percent,
    percent_text,
    whole_amount,
)
from carprice.defs.monitoring import batch_monitoring
from carprice.defs.resources import ReportsResource, WarehouseResource
from carprice.defs.training import champion_model
from carprice.defs.valuation import deals
from carprice.money.rates import BASE
from carprice.monitoring.pages import MODEL_PAGE, write_pages
from carprice.training import overview
from carprice.training.overview import ModelOverview, coverage_flag


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


def challengers_table(view: ModelOverview, limit: int = 15, currency: str = BASE) -> str:
    """Every model's judgement, newest first: promoted or rejected, why, and its MAE beside the champion's then."""
    rows = [[h["version"], str(h["trained_at"])[:16], h["trained_because"] or "", h["decision"],
             money_text(h.get("mae"), currency), money_text(h.get("champion_mae"), currency), h["reason"]]
            for h in view.history[:limit]]
    return markdown_table(["version", "trained", "because", "judgement", "its MAE", "champion's MAE then", "why"],
                          rows, right=[4, 5]) if rows else "no model trained yet"


def overview_metadata(view: ModelOverview, coverage_tolerance: float, currency: str = BASE) -> dict:
    """The current-model view as asset metadata: the champion's numbers in the market currency and percent first,
    the coverage check, when and why it was promoted, then the challengers' table and its registry entry, condensed."""
    champ = view.champion
    if champ is None:
        return {"champion": "none yet", "challengers": dg.MetadataValue.md(challengers_table(view, currency=currency))}
    ev = champ["evaluation"]
    metadata = {"champion": champ["version"]}
    if known(ev.get("mae")):
        metadata["mae"] = whole_amount(ev["mae"])
        metadata["currency"] = currency
    for key in ("median_ape", "mape", "interval_coverage"):
        if known(ev.get(key)):
            metadata[f"{key}_pct"] = percent(ev[key])
    if known(ev.get("r2")):
        metadata["r2"] = round(ev["r2"], 3)
    coverage = ev.get("interval_coverage")
    flag = coverage_flag(coverage, view.coverage_target, coverage_tolerance)
    metadata["interval_coverage_check"] = flag or (f"ok: {percent_text(coverage, 0)} covered, target "
                                                   f"{view.coverage_target:.0%}" if known(coverage) else "not measured")
    metadata.update({
        "promoted_at": str(champ["promoted_at"])[:19], "promoted_because": dg.MetadataValue.text(
            champ["promoted_because"] or ""),
        "trained_because": dg.MetadataValue.text(champ["trained_because"] or ""),
        "challengers": dg.MetadataValue.md(challengers_table(view, currency=currency)),
        "rejected_challengers": sum(h["decision"] == "rejected" for h in view.history),
        "train": f"{champ['n_train']} listings from {champ['train_batches']} batches",
        "artifact": dg.MetadataValue.path(str(champ["artifact"])), "sha256": champ["sha256"][:16],
        "code_version": champ["code_version"]})
    return metadata


@dg.asset(
    deps=[champion_model],
    group_name="publishing",
    owners=OWNERS,
    tags=layer("published"),
    kinds={"duckdb"},
    pool="warehouse",
)
def model_overview(warehouse: WarehouseResource, reports: ReportsResource) -> dg.MaterializeResult:
    """The current model at a glance: the champion's error in the market currency and percent, its interval's
    coverage against the target, when and why it was promoted, and every challenger with its judgement (also a page
    of the reports)."""
    wh = warehouse.get()
    tolerance = MonitoringConfig().coverage_tolerance
    write_pages(wh, reports.root, tolerance, warehouse.market_currency)
    return dg.MaterializeResult(metadata={
        **overview_metadata(overview.model_overview(wh), tolerance, warehouse.market_currency),
        "page": dg.MetadataValue.url(reports.url_of(reports.root / MODEL_PAGE))})
