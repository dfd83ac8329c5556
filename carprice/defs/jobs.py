"""Jobs that run the stages: crawl a source, take one batch through to valuations and monitoring, retrain."""

import dagster as dg

from carprice.defs.cleaning import clean_listings
from carprice.defs.ingest import admitted_batch, raw_listings
from carprice.defs.monitoring import batch_monitoring
from carprice.defs.publishing import model_overview, warehouse_snapshot
from carprice.defs.scraping import scraped_batch
from carprice.defs.training import challenger_model, champion_model, listing_features
from carprice.defs.valuation import deals, listing_valuations

crawl_job = dg.define_asset_job("crawl_job", selection=[scraped_batch],
                                description="Crawl one source into a new landed batch.")
batch_job = dg.define_asset_job(
    "batch_job",
    selection=[raw_listings, admitted_batch, clean_listings, listing_features, listing_valuations, deals,
               batch_monitoring, warehouse_snapshot],
    description="Ingest and validate one landed batch; if it passes: clean, value every listing with the "
                "champion, monitor the batch (Evidently), publish. A quarantined batch stops at admitted_batch "
                "(the run succeeds; its checks say why).")
training_job = dg.define_asset_job(
    "training_job", selection=[challenger_model, champion_model, model_overview, listing_valuations, deals,
                               warehouse_snapshot],
    description="Train a challenger on the admitted data, judge it against the champion on fresh listings, "
                "re-value listings with whichever serves, publish.")
refresh_job = dg.define_asset_job(
    "refresh_job",
    selection=[clean_listings, listing_features, challenger_model, champion_model, model_overview,
               listing_valuations, deals, warehouse_snapshot],
    description="Rebuild everything from the admitted batches: clean, train and judge a challenger, value, publish.")
valuation_job = dg.define_asset_job(
    "valuation_job", selection=[model_overview, listing_valuations, deals, warehouse_snapshot],
    description="Re-value current listings with the champion (after a rollback) and publish a snapshot.")
