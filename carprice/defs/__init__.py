"""Dagster definitions, one module per pipeline stage, in the order data flows."""
