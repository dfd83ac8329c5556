"""Stage 1: crawl a source into a new immutable batch in the landing zone."""

import dagster as dg

from carprice.defs.partitions import batch_partitions, source_partitions
from carprice.defs.resources import ScraperResource


@dg.asset(partitions_def=source_partitions, group_name="scraping", kinds={"scrapy"})
def scraped_batch(context: dg.AssetExecutionContext, scraper: ScraperResource) -> dg.MaterializeResult:
    """A fresh crawl of one source, landed as a batch (listings, rejects, manifest)."""
    result = scraper.crawl(context.partition_key)
    batch = result.batch
    context.instance.add_dynamic_partitions(batch_partitions.name, [batch.batch_id])
    counts = batch.manifest.get("counts", {})
    pages = counts.get("pages", 0)
    context.log.info("landed %s: %s", batch.batch_id, counts)
    return dg.MaterializeResult(metadata={
        "batch_id": batch.batch_id,
        "listings": counts.get("listings", 0),
        "rejects": counts.get("rejects", 0),
        "pages": pages,
        "pages_per_second": round(pages / result.seconds, 1) if result.seconds else 0.0,
        "finish_reason": batch.manifest.get("finish_reason"),
        "reject_reasons": dg.MetadataValue.json(batch.manifest.get("reject_reasons", {})),
        "path": dg.MetadataValue.path(str(batch.path)),
    })
