"""Jobs that run the stages: crawl a source, ingest a batch, then refresh everything downstream."""

import dagster as dg

from carprice.defs.cleaning import clean_listings
from carprice.defs.ingestion import raw_listings
from carprice.defs.publishing import warehouse_snapshot
from carprice.defs.scraping import scraped_batch
from carprice.defs.training import challenger_model, champion_model, listing_features
from carprice.defs.valuation import deals, listing_valuations

crawl_job = dg.define_asset_job("crawl_job", selection=[scraped_batch],
                                description="Crawl one source into a new landed batch.")
_DOWNSTREAM = [clean_listings, listing_features, challenger_model, champion_model, listing_valuations, deals,
               warehouse_snapshot]
batch_job = dg.define_asset_job(
    "batch_job", selection=[raw_listings, *_DOWNSTREAM],
    description="Ingest and validate one landed batch; if it passes: clean, train a challenger, judge it, value, publish.")
refresh_job = dg.define_asset_job(
    "refresh_job", selection=_DOWNSTREAM,
    description="Clean, train a challenger and judge it against the champion, value listings, publish a snapshot.")
valuation_job = dg.define_asset_job(
    "valuation_job", selection=[listing_valuations, deals, warehouse_snapshot],
    description="Re-value current listings with the champion (after a rollback) and publish a snapshot.")
