"""The warehouse side of cleaning: what it reads of admitted batches, and the two tables it writes.

Writes ``clean_listings`` (one row per listing) and ``excluded_listings`` (every row left out, with why).
"""

from __future__ import annotations

import pandas as pd

from carprice.cleaning.rules import ORIGIN_PATTERN
from carprice.money.rates import Money
from carprice.money.store import priced_sql, store_rates
from carprice.validation.store import ADMITTED_SQL
from carprice.warehouse import Warehouse

# A listing's identity in SQL, as rules.listing_key computes it in pandas: source and URL without its origin.
LISTING_KEY_SQL = f"source || ':' || regexp_replace(url, '{ORIGIN_PATTERN}', '', 'i')"


def admitted_raw_listings(wh: Warehouse, money: Money | None = None) -> pd.DataFrame:
    """Every raw row of every admitted batch (a quarantined batch never reaches cleaning), priced in ``money``'s
    market currency at the rates of its date: ``market_price``, or ``price_problem`` saying why there is none."""
    money = money or Money.default()
    with wh.transaction() as con:
        store_rates(con, money)
        admitted = (f"(SELECT r.* FROM raw_listings r JOIN batch_status s USING (batch_id) "
                    f"WHERE s.status IN {ADMITTED_SQL})")
        return con.execute(priced_sql(admitted, money.currency)).df()


def latest_admitted_batches(wh: Warehouse) -> dict[str, str]:
    """Per source, its newest admitted batch: the listings in it are the ones on sale now."""
    rows = wh.query("SELECT b.source, arg_max(b.batch_id, b.started_at) AS batch_id FROM batches b "
                    f"JOIN batch_status s USING (batch_id) WHERE s.status IN {ADMITTED_SQL} GROUP BY b.source")
    return dict(zip(rows["source"], rows["batch_id"]))


def write_clean(wh: Warehouse, clean: pd.DataFrame, excluded: pd.DataFrame) -> None:
    wh.replace_table("clean_listings", clean)
    wh.replace_table("excluded_listings", excluded)
