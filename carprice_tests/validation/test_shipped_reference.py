"""The embedded marketplace's shipped reference is a euro profile: it judges a euro installation's first batch,
while an installation in another currency onboards the source like any new one."""

from __future__ import annotations

from carprice.config import ValidationConfig
from carprice.ingest.store import ingest_batch
from carprice.money.rates import load_money
from carprice.validation.admission import validate_batch
from carprice.validation.checks import CHECK_ONBOARDED
from carprice.validation.shipped import SHIPPED_REFERENCE_ID
from carprice.warehouse import Warehouse
from carprice_tests.conftest import copy_batch


def test_the_euro_reference_judges_only_a_euro_installations_first_batch(tmp_path, crawled_batch):
    outcomes = {}
    for currency in ("EUR", "USD"):
        batch = copy_batch(crawled_batch, tmp_path / currency / "landing")
        wh = Warehouse(tmp_path / currency / "warehouse.duckdb")
        ingest_batch(wh, batch)
        verdict = validate_batch(wh, batch, ValidationConfig(), load_money(currency))
        outcomes[currency] = (verdict.reference_id, next(o for o in verdict.outcomes if o.name == CHECK_ONBOARDED))
    eur_reference, eur_onboarded = outcomes["EUR"]
    assert eur_reference == SHIPPED_REFERENCE_ID and eur_onboarded.passed
    usd_reference, usd_onboarded = outcomes["USD"]
    assert usd_reference is None and not usd_onboarded.passed
    assert "first batch of a new source" in " ".join(usd_onboarded.failures)
