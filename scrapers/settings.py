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

# A redirect off the allowed domains is a reject naming its target (Scrapy would drop it without a word): HTTP
# redirects seen before RedirectMiddleware (600), meta refreshes between decompression (590) and MetaRefresh (580).
DOWNLOADER_MIDDLEWARES = {"scrapers.middlewares.OffsiteRedirectMiddleware": 650,
                          "scrapers.middlewares.OffsiteMetaRefreshMiddleware": 585}

# Largest sitemap read, in bytes once decompressed (the sitemaps.org limit); a bigger one is a reject.
SITEMAP_MAX_SIZE = 50 * 1024 * 1024
# Regular expressions (searched, empty: all) a page URL in a sitemap must match to be read as a listing, and a
# child sitemap's URL to be read: a site's sitemap lists its other pages too. Set per source in scrapy_settings.
SITEMAP_LISTING_PATTERN = ""
SITEMAP_FOLLOW_PATTERN = ""

ITEM_PIPELINES = {
    "scrapers.pipelines.NormalizePipeline": 100,
    "scrapers.pipelines.ValidatePipeline": 200,
    "scrapers.pipelines.LandingZonePipeline": 900,
}

# Where batches land; the platform passes its own with -s LANDING_DIR=...
LANDING_DIR = "data/landing"

FEED_EXPORT_ENCODING = "utf-8"
