"""The Dagster code location: every asset, job and resource of carprice."""

import dagster as dg

from carprice.config import Settings, load_settings
from carprice.defs import cleaning, ingestion, monitoring, publishing, scraping, training, valuation
from carprice.defs.automation import daily_crawl, landing_sensor, retraining_sensor
from carprice.defs.jobs import batch_job, crawl_job, refresh_job, training_job, valuation_job
from carprice.defs.resources import build_resources
from carprice.defs.review import readmit_job


def build_definitions(settings: Settings | None = None) -> dg.Definitions:
    """Definitions bound to one installation's settings (the environment's by default)."""
    return dg.Definitions(
        assets=dg.load_assets_from_modules([scraping, ingestion, cleaning, training, valuation, monitoring, publishing]),
        jobs=[crawl_job, batch_job, training_job, refresh_job, valuation_job, readmit_job],
        schedules=[daily_crawl],
        sensors=[landing_sensor, retraining_sensor],
        resources=build_resources(settings or load_settings()),
        # A run's steps follow each other anyway (one DuckDB writer), so they share one process instead of
        # paying an interpreter start and the imports for each step.
        executor=dg.in_process_executor,
    )


defs = build_definitions()
