"""Scrapy project that collects used-car listings from sites publishing schema.org vehicle data."""

__version__ = "1.0.0"
