"""Spiders: they follow links and hand pages to the pure parsers in scrapers.parsing."""
