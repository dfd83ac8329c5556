"""Partitions: crawls are per source, ingestion is per landed batch."""

import dagster as dg

from carprice.config import SOURCES

source_partitions = dg.StaticPartitionsDefinition(list(SOURCES))
batch_partitions = dg.DynamicPartitionsDefinition(name="batches")
