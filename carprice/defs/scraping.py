"""Stage 1: crawl a source into a new immutable batch in the landing zone."""

from datetime import date

import dagster as dg

from carprice.config import market_day
from carprice.defs.metadata import OWNERS, layer
from carprice.defs.partitions import batch_partitions, source_partitions
from carprice.defs.resources import ScraperResource


class CrawlConfig(dg.Config):
    """Which day's market the embedded marketplace shows (real sites are crawled as they are)."""

    as_of: str = ""  # ISO date; the daily schedule sets its tick's date. Empty: the configured market day.


def market_day_of(as_of: str) -> int | None:
    """The simulated marketplace's day number for an ISO date (on the market calendar of carprice.config)."""
    if not as_of:
        return None
    try:
        return market_day(date.fromisoformat(as_of))
    except ValueError as exc:
        raise dg.Failure(f"as_of must be an ISO date like 2026-03-01, got {as_of!r}") from exc


@dg.asset(
    partitions_def=source_partitions,
    group_name="scraping",
    owners=OWNERS,
    tags=layer("landing"),
    kinds={"scrapy"},
)
def scraped_batch(context: dg.AssetExecutionContext, config: CrawlConfig,
                  scraper: ScraperResource) -> dg.MaterializeResult:
    """A fresh crawl of one source, landed as a batch (listings, rejects, manifest)."""
    result = scraper.crawl(context.partition_key, market_day_of(config.as_of))
    batch = result.batch
    context.instance.add_dynamic_partitions(batch_partitions.name, [batch.batch_id])
    counts = batch.manifest.get("counts", {})
    pages = counts.get("pages", 0)
    context.log.info("landed %s: %s", batch.batch_id, counts)
    if not counts.get("listings"):
        # Landed all the same, rejects and all: the landing sensor takes it to validation, which quarantines it
        # and raises the alert; this run fails so the crawl's own page shows it.
        raise dg.Failure(empty_crawl_message(context.partition_key, batch.manifest),
                         metadata={"batch_id": batch.batch_id, "path": dg.MetadataValue.path(str(batch.path))})
    return dg.MaterializeResult(metadata={
        "batch_id": batch.batch_id,
        "as_of": config.as_of or "configured day",
        "listings": counts.get("listings", 0),
        "rejects": counts.get("rejects", 0),
        "pages": pages,
        "pages_per_second": round(pages / result.seconds, 1) if result.seconds else 0.0,
        "finish_reason": batch.manifest.get("finish_reason"),
        "reject_reasons": dg.MetadataValue.json(batch.manifest.get("reject_reasons", {})),
        "path": dg.MetadataValue.path(str(batch.path)),
    })


def empty_crawl_message(source: str, manifest: dict) -> str:
    """Why a crawl that landed no listing is worth a person's look: pages fetched and the rejects' reasons."""
    counts = manifest.get("counts", {})
    reasons = manifest.get("reject_reasons", {})
    why = "; ".join(f"{reason}: {n}" for reason, n in sorted(reasons.items(), key=lambda kv: -kv[1])[:5])
    return (f"the crawl of {source} landed no listing ({counts.get('pages', 0)} pages fetched, "
            f"{counts.get('rejects', 0)} rejects{': ' + why if why else ''}); finish reason "
            f"{manifest.get('finish_reason')!r}. `carprice sources check {source}` shows what the spider reads.")
