"""What the UI's "Upstream data" says of the challenger: that the features it was trained on changed, not merely
that listing_features was materialized again (every batch run rebuilds it)."""

from __future__ import annotations

import dagster as dg
import pytest
from dagster._core.definitions.data_version import CachingStaleStatusResolver, StaleStatus
from dagster._core.loader import LoadingContextForTest

from carprice.definitions import build_definitions
from carprice.defs.resources import build_resources
from carprice.defs.training import challenger_model, listing_features
from carprice.training import store
from carprice_tests.serving.conftest import build_installation

pytestmark = pytest.mark.integration

# A quick challenger: the recipe search has its own tests.
QUICK = {"ops": {"challenger_model": {"config": {"select_recipe": False}}}}


def challenger_staleness(instance: dg.DagsterInstance, defs: dg.Definitions) -> tuple[StaleStatus, list[str]]:
    """The challenger's stale status and its root causes, as the UI's asset graph gets them."""
    resolver = CachingStaleStatusResolver(instance, defs.resolve_asset_graph(), LoadingContextForTest(instance))
    causes = resolver.get_stale_root_causes(challenger_model.key)
    return resolver.get_status(challenger_model.key), [f"{c.asset_key.to_user_string()} {c.reason}" for c in causes]


def test_the_challenger_is_stale_only_when_the_features_changed(tmp_path):
    inst = build_installation(tmp_path, n=800)
    settings, instance = inst.settings, dg.DagsterInstance.ephemeral()
    defs, resources = build_definitions(settings), build_resources(settings)
    assert dg.materialize([listing_features, challenger_model], resources=resources, instance=instance,
                          run_config=QUICK).success
    assert challenger_staleness(instance, defs) == (StaleStatus.FRESH, [])

    # A batch run rebuilds the features; the same rows are the same data: the challenger is up to date.
    assert dg.materialize([listing_features], resources=resources, instance=instance).success
    assert challenger_staleness(instance, defs) == (StaleStatus.FRESH, [])

    # New listings: now the challenger was trained on older features, and the UI says so.
    wh = inst.warehouse
    before = store.features_version(wh)
    clean = wh.query("SELECT * FROM clean_listings")
    wh.replace_table("clean_listings", clean.iloc[: len(clean) - 50])
    assert dg.materialize([listing_features], resources=resources, instance=instance).success
    assert store.features_version(wh) != before
    assert challenger_staleness(instance, defs) == (StaleStatus.STALE, ["listing_features has a new data version"])


def test_the_features_version_is_the_rows_in_any_order(tmp_path):
    wh = build_installation(tmp_path, n=400).warehouse
    version = store.features_version(wh)
    features = wh.query("SELECT * FROM listing_features")
    wh.replace_table("listing_features", features.sample(frac=1, random_state=3))
    assert store.features_version(wh) == version and version.startswith(f"{len(features)}-")
    wh.replace_table("listing_features", features.assign(mileage_km=features["mileage_km"] + 1))
    assert store.features_version(wh) != version
