"""The Dagster code location: every asset, job and resource of carprice."""

import dagster as dg

from carprice.config import Settings, load_settings
from carprice.defs import cleaning, ingestion, publishing, scraping, training, valuation
from carprice.defs.jobs import crawl_job, ingest_job, refresh_job
from carprice.defs.resources import build_resources


def build_definitions(settings: Settings | None = None) -> dg.Definitions:
    """Definitions bound to one installation's settings (the environment's by default)."""
    return dg.Definitions(
        assets=dg.load_assets_from_modules([scraping, ingestion, cleaning, training, valuation, publishing]),
        jobs=[crawl_job, ingest_job, refresh_job],
        resources=build_resources(settings or load_settings()),
    )


defs = build_definitions()
