"""Scrapy settings for the listings spiders: polite by default, tuned per source by the caller."""

BOT_NAME = "carprice"
SPIDER_MODULES = ["scrapers.spiders"]
NEWSPIDER_MODULE = "scrapers.spiders"
USER_AGENT = "carprice-bot/1.0 (+https://github.com/carprice/carprice)"

ROBOTSTXT_OBEY = True
CONCURRENT_REQUESTS = 16
CONCURRENT_REQUESTS_PER_DOMAIN = 4
DOWNLOAD_DELAY = 0.5
DOWNLOAD_TIMEOUT = 30
AUTOTHROTTLE_ENABLED = True
AUTOTHROTTLE_START_DELAY = 1.0
AUTOTHROTTLE_MAX_DELAY = 30.0
AUTOTHROTTLE_TARGET_CONCURRENCY = 2.0
RETRY_ENABLED = True
RETRY_TIMES = 3
RETRY_HTTP_CODES = [500, 502, 503, 504, 522, 524, 408, 429]
TELNETCONSOLE_ENABLED = False
COOKIES_ENABLED = False
LOG_LEVEL = "INFO"

ITEM_PIPELINES = {
    "scrapers.pipelines.NormalizePipeline": 100,
    "scrapers.pipelines.ValidatePipeline": 200,
    "scrapers.pipelines.LandingZonePipeline": 900,
}

# Where batches land; the platform passes its own with -s LANDING_DIR=...
LANDING_DIR = "data/landing"

FEED_EXPORT_ENCODING = "utf-8"
