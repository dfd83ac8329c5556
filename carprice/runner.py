"""Run the whole path (crawl, ingest and validate, clean, train, value) through Dagster jobs on a persistent instance."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
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
# The instance keeps every event; the terminal only needs INFO and above.
_QUIET = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}


def prepare_dagster_home(settings: Settings) -> Path:
    """Create the Dagster home with its dagster.yaml and point DAGSTER_HOME at it."""
    home = settings.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        config.write_text(DAGSTER_YAML, encoding="utf-8")
    os.environ["DAGSTER_HOME"] = str(home)
    return home


class PipelineError(RuntimeError):
    """A run that failed for a reason other than validation; names the run and the failing step."""


def _first_failure(result: dg.ExecuteInProcessResult) -> str:
    for event in result.all_events:
        if event.event_type_value == "STEP_FAILURE":
            error = event.step_failure_data.error if event.step_failure_data else None
            cause = error.cause.message.strip() if error and error.cause else (error.message.strip() if error else "")
            return f"step {event.step_key} failed: {cause.splitlines()[-1] if cause else event.message}"
    return "the run failed"


@dataclass
class RunSummary:
    """What one end-to-end run did, for printing."""

    batch_id: str
    status: str
    warehouse: Path
    snapshot: Path
    dagster_home: Path
    scraped: int = 0
    crawl_rejects: int = 0
    pages: int = 0
    pages_per_second: float = 0.0
    failed_checks: dict[str, str] = field(default_factory=dict)
    accepted: int = 0
    excluded: int = 0
    model_version: str | None = None
    metrics: dict = field(default_factory=dict)
    challenger: str | None = None
    promoted: bool = False
    promotion_reason: str = ""
    baselines: dict = field(default_factory=dict)
    valued: int = 0
    deals: int = 0
    seconds: float = 0.0
    run_ids: list[str] = field(default_factory=list)

    @property
    def admitted(self) -> bool:
        return self.status in ("accepted", "readmitted")

    def render(self) -> str:
        lines = ["", f"carprice: run finished, batch {self.status}",
                 f"  batch            {self.batch_id}"]
        if self.pages:
            lines += [f"  pages crawled    {self.pages} ({self.pages_per_second:.0f} pages/s)",
                      f"  listings         scraped {self.scraped}, rejected by the spider {self.crawl_rejects}"]
        if self.admitted:
            m = self.metrics
            lines += [
                f"  clean listings   accepted {self.accepted}, excluded by cleaning {self.excluded}",
                f"  challenger       {self.challenger} {'PROMOTED' if self.promoted else 'rejected'}: "
                f"{self.promotion_reason}",
                f"  serving model    {self.model_version}",
                f"  on fresh data    MAE {m['mae_eur']:,.0f} EUR | median abs % error {100 * m['median_ape']:.1f}% "
                f"| R² {m['r2']:.3f} | 90% interval coverage {100 * m.get('interval_coverage', float('nan')):.0f}% "
                f"| n={m['n']}",
            ]
            lines += [f"  baseline         {name}: MAE {mae:,.0f} EUR" for name, mae in self.baselines.items()]
            lines += [f"  valued listings  {self.valued}, of which {self.deals} deals (asking below the interval)"]
        else:
            lines += ["  QUARANTINED: the batch stays in raw_listings; nothing downstream was touched"]
            lines += [f"    {name}: {why}" for name, why in self.failed_checks.items()]
            lines += [f"  serving model    {self.model_version or 'none yet'} (unchanged)",
                      f"  after review     .venv/bin/carprice batches readmit {self.batch_id} --by NAME --note WHY"]
        lines += [
            f"  took             {self.seconds:.0f} s",
            f"  warehouse        {self.warehouse}",
            f"  analysts query   duckdb -readonly {self.snapshot}   (a snapshot: never blocks a run)",
            f"  dagster home     {self.dagster_home}",
            "  open the UI      .venv/bin/carprice ui   (then http://127.0.0.1:3000)",
        ]
        return "\n".join(lines)


def _metadata(result: dg.ExecuteInProcessResult, asset: str) -> dict:
    events = result.asset_materializations_for_node(asset)
    if not events:
        raise RuntimeError(f"run {result.run_id} did not materialize {asset}")
    return {k: v.value for k, v in events[-1].metadata.items()}


def _instance_and_defs(settings: Settings):
    from carprice.definitions import build_definitions

    prepare_dagster_home(settings)
    return dg.DagsterInstance.get(), build_definitions(settings)


def process_batch(settings: Settings, batch_id: str, summary: RunSummary | None = None) -> RunSummary:
    """Run batch_job for one landed batch: ingest and validate; if admitted, clean, train, value, publish."""
    from carprice.defs.partitions import batch_partitions
    from carprice.registry import NoChampionError, champion
    from carprice.warehouse import Warehouse

    instance, defs = _instance_and_defs(settings)
    summary = summary or RunSummary(batch_id=batch_id, status="unknown", warehouse=settings.warehouse_path,
                                    snapshot=settings.snapshot_path, dagster_home=settings.dagster_home)
    # A batch landed outside Dagster (a standalone `scrapy crawl`) has no partition yet.
    if not instance.has_dynamic_partition(batch_partitions.name, batch_id):
        instance.add_dynamic_partitions(batch_partitions.name, [batch_id])
    result = defs.resolve_job_def("batch_job").execute_in_process(
        instance=instance, partition_key=batch_id, run_config=_QUIET, raise_on_error=False)
    summary.run_ids.append(result.run_id)
    wh = Warehouse(settings.warehouse_path)
    status = wh.query("SELECT status FROM batch_status WHERE batch_id = ?", [batch_id])
    if status.empty:
        raise PipelineError(f"batch {batch_id} was not validated (run {result.run_id}): {_first_failure(result)}")
    summary.status = str(status.iloc[0]["status"])
    if summary.admitted:
        if not result.success:
            raise PipelineError(f"batch {batch_id} was admitted but run {result.run_id} failed downstream: "
                                f"{_first_failure(result)}")
        clean, model, valued, found = (_metadata(result, a) for a in
                                       ("clean_listings", "champion_model", "listing_valuations", "deals"))
        summary.accepted, summary.excluded = clean["dagster/row_count"], clean["excluded"]
        summary.challenger, summary.promoted, summary.promotion_reason = (
            model["challenger"], model["promoted"], model["reason"])
        summary.metrics = model["scores"].get("champion_after", {}).get("overall", {})
        summary.baselines = {k.removeprefix("baseline_").removesuffix("_mae_eur"): v for k, v in model.items()
                             if k.startswith("baseline_")}
        summary.valued, summary.deals = valued["dagster/row_count"], found["dagster/row_count"]
    else:
        checks = wh.query("SELECT check_name, failures FROM batch_checks WHERE batch_id = ? AND NOT passed "
                          "AND checked_at = (SELECT max(checked_at) FROM batch_checks WHERE batch_id = ?)",
                          [batch_id, batch_id])
        summary.failed_checks = {r.check_name: "; ".join(json.loads(r.failures)) for r in checks.itertuples()}
    try:
        summary.model_version = champion(wh).version
    except NoChampionError:
        summary.model_version = None
    return summary


def revalue(settings: Settings) -> int:
    """Run valuation_job: value current listings with the champion, list deals, publish; returns rows valued."""
    instance, defs = _instance_and_defs(settings)
    result = defs.resolve_job_def("valuation_job").execute_in_process(instance=instance, run_config=_QUIET)
    return int(_metadata(result, "listing_valuations")["dagster/row_count"])


def run_end_to_end(settings: Settings, source: str = "automarkt", progress=print) -> RunSummary:
    """Crawl ``source`` into a new batch, then process it with batch_job."""
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r}; configured: {sorted(SOURCES)}")
    started = time.perf_counter()
    instance, defs = _instance_and_defs(settings)
    progress(f"[1/2] crawling {source} (simulated marketplace: {settings.market_listings} listings, "
             f"day {settings.market_day}, seed {settings.market_seed}"
             + (f", faults {sorted(settings.market_faults)}" if settings.market_faults else "") + ")")
    crawl = defs.resolve_job_def("crawl_job").execute_in_process(
        instance=instance, partition_key=source, run_config=_QUIET)
    meta = _metadata(crawl, "scraped_batch")
    batch_id = meta["batch_id"]
    summary = RunSummary(batch_id=batch_id, status="unknown", warehouse=settings.warehouse_path,
                         snapshot=settings.snapshot_path, dagster_home=settings.dagster_home,
                         scraped=meta["listings"], crawl_rejects=meta["rejects"], pages=meta["pages"],
                         pages_per_second=meta["pages_per_second"], run_ids=[crawl.run_id])
    progress(f"[2/2] ingesting and validating {batch_id}; if it passes: cleaning, training, valuations")
    process_batch(settings, batch_id, summary)
    summary.seconds = time.perf_counter() - started
    return summary


def summary_json(summary: RunSummary) -> str:
    return json.dumps(summary.__dict__ | {"admitted": summary.admitted}, indent=2, default=str)
