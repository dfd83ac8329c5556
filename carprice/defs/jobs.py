"""Jobs that run the stages: crawl a source, ingest a batch, then refresh everything downstream."""

import dagster as dg

from carprice.defs.cleaning import clean_listings
from carprice.defs.ingestion import raw_listings
from carprice.defs.publishing import warehouse_snapshot
from carprice.defs.scraping import scraped_batch
from carprice.defs.training import listing_features, price_model
from carprice.defs.valuation import listing_valuations

crawl_job = dg.define_asset_job("crawl_job", selection=[scraped_batch],
                                description="Crawl one source into a new landed batch.")
_DOWNSTREAM = [clean_listings, listing_features, price_model, listing_valuations, warehouse_snapshot]
batch_job = dg.define_asset_job(
    "batch_job", selection=[raw_listings, *_DOWNSTREAM],
    description="Ingest and validate one landed batch; if it passes its checks, clean, train, value and publish.")
refresh_job = dg.define_asset_job(
    "refresh_job", selection=_DOWNSTREAM,
    description="Clean, build features, train and register a model, value current listings, publish a snapshot.")
