"""The Dagster code location: everything in the ``defs/`` folder, bound to one installation's resources."""

import warnings

import dagster as dg

from carprice.config import PROJECT_DIR, DataLayout, Settings, export_defaults, load_settings
from carprice.defs.automation import crawl_schedule
from carprice.defs.resources import build_resources
from carprice.sources import load_sources


def _unique(objects) -> list:
    """Each definition once: the folder loader finds an asset again in every module that imports it."""
    return list({id(o): o for o in objects or ()}.values())


def build_definitions(settings: Settings | None = None) -> dg.Definitions:
    """The assets, checks, jobs, schedules and sensors of ``defs/``, with resources for ``settings``, or
    reading the environment when none are given: each test builds its own installation this way.

    Each enabled source with a cron schedule in the installation's sources.toml gets its crawl schedule; a file
    that cannot be used stops the load with the line at fault (the UI shows it on the code location)."""
    sources = load_sources(DataLayout((settings or load_settings()).data_dir).sources_path)
    crawl_schedules = [crawl_schedule(s) for s in sources.values() if s.enabled and s.schedule]
    loaded = dg.load_from_defs_folder(path_within_project=PROJECT_DIR)
    with warnings.catch_warnings():
        # Code references (the UI's link from each asset to its source file) are a beta API in Dagster 1.13;
        # the warning would be printed at every load, in every process.
        warnings.simplefilter("ignore", dg.BetaWarning)
        assets = dg.with_source_code_references(_unique(loaded.assets))
    return dg.Definitions(
        assets=assets,
        asset_checks=_unique(loaded.asset_checks),
        jobs=_unique(loaded.jobs),
        schedules=_unique(loaded.schedules) + crawl_schedules,
        sensors=_unique(loaded.sensors),
        resources=build_resources(settings),
        # A run's steps follow each other anyway (one DuckDB writer), so they share one process instead of
        # paying an interpreter start and the imports for each step.
        executor=dg.in_process_executor,
    )


@dg.definitions
def defs() -> dg.Definitions:
    """What `dg dev`, `dagster dev` and the daemon load: resources read the environment, unset settings
    take their defaults."""
    export_defaults()
    return build_definitions()
