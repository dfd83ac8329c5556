"""Run the whole path once (crawl, ingest, clean, train, value) through Dagster jobs on a persistent instance."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from carprice.config import SOURCES, Settings

DAGSTER_YAML = """# Written by carprice: the project's own Dagster instance (runs, events, schedules).
telemetry:
  enabled: false
concurrency:
  pools:
    # DuckDB takes one writer at a time: assets that write share the "warehouse" pool.
    default_limit: 1
"""


def prepare_dagster_home(settings: Settings) -> Path:
    """Create the Dagster home with its dagster.yaml and point DAGSTER_HOME at it."""
    home = settings.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        config.write_text(DAGSTER_YAML, encoding="utf-8")
    os.environ["DAGSTER_HOME"] = str(home)
    return home


@dataclass
class RunSummary:
    """What one end-to-end run did, for printing."""

    batch_id: str
    scraped: int
    crawl_rejects: int
    pages: int
    pages_per_second: float
    accepted: int
    excluded: int
    model_version: str
    metrics: dict
    valued: int
    seconds: float
    warehouse: Path
    snapshot: Path
    dagster_home: Path
    run_ids: list[str]

    def render(self) -> str:
        m = self.metrics
        return "\n".join([
            "",
            "carprice: end-to-end run finished",
            f"  batch            {self.batch_id}",
            f"  pages crawled    {self.pages} ({self.pages_per_second:.0f} pages/s)",
            f"  listings         scraped {self.scraped}, rejected by the spider {self.crawl_rejects}",
            f"  clean listings   accepted {self.accepted}, excluded by cleaning {self.excluded}",
            f"  model            {self.model_version}",
            f"  holdout (newest) MAE {m['mae_eur']:,.0f} EUR | median abs % error {100 * m['median_ape']:.1f}% "
            f"| R² {m['r2']:.3f} | n={m['n']}",
            f"  valued listings  {self.valued}",
            f"  took             {self.seconds:.0f} s",
            f"  warehouse        {self.warehouse}",
            f"  analysts query   duckdb -readonly {self.snapshot}   (a snapshot: never blocks a run)",
            f"  dagster home     {self.dagster_home}",
            "  open the UI      .venv/bin/carprice ui   (then http://127.0.0.1:3000)",
        ])


def _metadata(result: dg.ExecuteInProcessResult, asset: str) -> dict:
    events = result.asset_materializations_for_node(asset)
    if not events:
        raise RuntimeError(f"run {result.run_id} did not materialize {asset}")
    return {k: v.value for k, v in events[-1].metadata.items()}


def run_end_to_end(settings: Settings, source: str = "automarkt", progress=print) -> RunSummary:
    """Crawl ``source``, ingest the batch, then refresh cleaning, features, model and valuations."""
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r}; configured: {sorted(SOURCES)}")
    from carprice.definitions import build_definitions

    prepare_dagster_home(settings)
    started = time.perf_counter()
    instance = dg.DagsterInstance.get()
    defs = build_definitions(settings)
    run_ids = []
    # The instance keeps every event; the terminal only needs INFO and above.
    quiet = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}

    progress(f"[1/3] crawling {source} (simulated marketplace: {settings.market_listings} listings, "
             f"day {settings.market_day}, seed {settings.market_seed})")
    crawl = defs.resolve_job_def("crawl_job").execute_in_process(
        instance=instance, partition_key=source, run_config=quiet)
    run_ids.append(crawl.run_id)
    crawl_meta = _metadata(crawl, "scraped_batch")
    batch_id = crawl_meta["batch_id"]

    progress(f"[2/3] ingesting batch {batch_id}")
    ingest = defs.resolve_job_def("ingest_job").execute_in_process(
        instance=instance, partition_key=batch_id, run_config=quiet)
    run_ids.append(ingest.run_id)

    progress("[3/3] cleaning, features, training, valuations")
    refresh = defs.resolve_job_def("refresh_job").execute_in_process(instance=instance, run_config=quiet)
    run_ids.append(refresh.run_id)
    clean_meta = _metadata(refresh, "clean_listings")
    model_meta = _metadata(refresh, "price_model")
    value_meta = _metadata(refresh, "listing_valuations")

    from carprice.registry import champion
    from carprice.warehouse import Warehouse

    serving = champion(Warehouse(settings.warehouse_path))
    return RunSummary(
        batch_id=batch_id, scraped=crawl_meta["listings"], crawl_rejects=crawl_meta["rejects"],
        pages=crawl_meta["pages"], pages_per_second=crawl_meta["pages_per_second"],
        accepted=clean_meta["dagster/row_count"], excluded=clean_meta["excluded"],
        model_version=model_meta["version"], metrics=serving.metrics["holdout"],
        valued=value_meta["dagster/row_count"], seconds=time.perf_counter() - started,
        warehouse=settings.warehouse_path, snapshot=settings.snapshot_path, dagster_home=settings.dagster_home, run_ids=run_ids,
    )


def summary_json(summary: RunSummary) -> str:
    return json.dumps(summary.__dict__, indent=2, default=str)
