"""The warehouse side of monitoring: a batch's listings as the serving model sees them, and the report rows."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd

from carprice.cleaning import LISTING_KEY_SQL
from carprice.monitoring import MonitoringSummary
from carprice.warehouse import Warehouse


def batch_listings(wh: Warehouse, batch_id: str, train_batches: list[str]) -> pd.DataFrame:
    """Feature rows of the batch's clean listings, with ``fresh``: never seen in any of ``train_batches``.

    Listings are matched by identity (source and URL path), as cleaning matches them; each comes with
    its current clean row.
    """
    return wh.query(
        f"""WITH seen AS (SELECT DISTINCT {LISTING_KEY_SQL} AS listing_key FROM raw_listings
                          WHERE list_contains(?, batch_id)),
                 batch AS (SELECT DISTINCT {LISTING_KEY_SQL} AS listing_key FROM raw_listings WHERE batch_id = ?)
            SELECT f.*, NOT EXISTS (SELECT 1 FROM seen WHERE seen.listing_key = c.listing_key) AS fresh
            FROM listing_features f JOIN clean_listings c USING (url)
            WHERE EXISTS (SELECT 1 FROM batch WHERE batch.listing_key = c.listing_key)""",
        [train_batches, batch_id])


def store_report(wh: Warehouse, batch_id: str, model_version: str, summary: MonitoringSummary) -> None:
    """Record one batch's monitoring against one model; monitoring it again with that model replaces the row."""
    row = {"batch_id": batch_id, "model_version": model_version, "monitored_at": datetime.now(UTC),
           **summary.to_row()}
    with wh.transaction() as con:
        con.execute("DELETE FROM monitoring_reports WHERE batch_id = ? AND model_version = ?",
                    [batch_id, model_version])
        con.execute(f"INSERT INTO monitoring_reports ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                    list(row.values()))
