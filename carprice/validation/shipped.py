"""Reviewed reference profiles shipped with the project, for sources whose first batch needs no onboarding.

The embedded marketplace's reference was profiled from a crawl of the simulated market and reviewed when
it was built, so an installation's first batch is judged like any later one. Rebuild it after a change to
the profile or the marketplace:

    .venv/bin/python -m carprice.validation.shipped

A reference the warehouse learned from admitted batches always takes precedence over the shipped one.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from carprice.config import EMBEDDED_SOURCE

REFERENCES_DIR = Path(__file__).parent / "references"
# Reference id recorded for checks judged against a shipped reference (warehouse references start at 1).
SHIPPED_REFERENCE_ID = 0
# The simulated market the embedded reference is profiled from: mid-calendar, so a run on any day of the
# calendar's first year is within a few months of it.
_MARKET = {"seed": 7, "day": 180, "listings": 3000}


def shipped_reference(source: str) -> tuple[int, dict] | None:
    """The reviewed reference shipped for ``source`` (with its id), or None when the project ships none."""
    if source != EMBEDDED_SOURCE.name or EMBEDDED_SOURCE.reviewed_reference is None:
        return None
    from carprice.validation.profile import upgrade_profile

    profile = json.loads((REFERENCES_DIR / EMBEDDED_SOURCE.reviewed_reference).read_text(encoding="utf-8"))
    return SHIPPED_REFERENCE_ID, upgrade_profile(profile)


def build_embedded_reference() -> dict:
    """Crawl the simulated marketplace, ingest the batch into a scratch warehouse and profile it."""
    from carprice.ingest.store import ingest_batch
    from carprice.market.server import running_marketplace
    from carprice.scraping.crawl import crawl_source
    from carprice.validation.profile import profile_rows
    from carprice.warehouse import Warehouse

    with tempfile.TemporaryDirectory() as tmp, running_marketplace(**_MARKET) as base:
        batch = crawl_source(EMBEDDED_SOURCE, Path(tmp) / "landing", start_url=f"{base}/cars?page=1",
                             timeout_s=600).batch
        wh = Warehouse(Path(tmp) / "warehouse.duckdb")
        ingest_batch(wh, batch)
        with wh.connect() as con:
            profile = profile_rows(con, [batch.batch_id])
    return {**profile, "batch_ids": [f"shipped:automarkt:seed{_MARKET['seed']}:day{_MARKET['day']}"]}


def main() -> None:
    target = REFERENCES_DIR / EMBEDDED_SOURCE.reviewed_reference
    target.write_text(json.dumps(build_embedded_reference(), indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
