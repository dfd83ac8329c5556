"""Partitions: crawls are per source (the installation's sources.toml names them), ingestion is per landed batch.

Sources are dynamic partitions: a source added to the file gets its partition when the installation next starts
(`carprice run`, `carprice ui`, `carprice crawl`) or its schedule first ticks, and a source taken out of the file
keeps its partition and the history of its crawls.
"""

import dagster as dg

source_partitions = dg.DynamicPartitionsDefinition(name="sources")
batch_partitions = dg.DynamicPartitionsDefinition(name="batches")


def add_source_partitions(instance: dg.DagsterInstance, names) -> list[str]:
    """Give each source in ``names`` its partition; returns those that were missing."""
    missing = [n for n in names if not instance.has_dynamic_partition(source_partitions.name, n)]
    if missing:
        instance.add_dynamic_partitions(source_partitions.name, missing)
    return missing
