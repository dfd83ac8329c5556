"""Validation checks as pure functions of profiles: each failure path with its numbers."""

from __future__ import annotations

import copy

import pytest

from carprice.config import ValidationConfig
from carprice.validation import checks
from carprice.validation import profile as profile_module
from carprice.validation.contract import contract_columns, type_family

CFG = ValidationConfig()
QUANTILES = [float(i) for i in range(1, 100)]


def profile(**overrides) -> dict:
    """A plausible batch profile; tests change one thing at a time."""
    base = {
        "batch_ids": ["b"], "n": 1000, "n_rejects": 5, "reject_rate": 0.005, "reject_reasons": {"HTTP 404": 5},
        "null_rate": {"make": 0.0, "model": 0.0, "price": 0.0, "mileage_km": 0.015, "power_kw": 0.06,
                      "model_year": 0.01, "fuel": 0.03},
        "out_of_range_rate": {"market_price": 0.01, "mileage_km": 0.0},
        "duplicate_rate": 0.0, "repost_rate": 0.02, "median_market_price": 12000.0, "median_km_per_year": 13000.0,
        "quantiles": {"log_market_price": [9 + q / 100 for q in QUANTILES], "mileage_km": [q * 2000 for q in QUANTILES],
                      "model_year": [2005 + q / 5 for q in QUANTILES], "power_kw": [50 + q for q in QUANTILES]},
        "categories": {"make": {"volkswagen": 0.2, "bmw": 0.1, "kia": 0.7}, "currency": {"eur": 0.92, "gbp": 0.08},
                       "fuel": {"petrol": 0.6, "diesel": 0.4}},
        "source_fields": {"mileageFromOdometer.value": {"share": 0.98, "types": {"number": 0.8, "string": 0.2}},
                          "offers.price": {"share": 1.0, "types": {"number": 0.3, "string": 0.7}},
                          "vehicleModelDate": {"share": 0.99, "types": {"string": 1.0}}},
    }
    for key, value in overrides.items():
        base[key] = value
    return base


def changed(path: str, value, base: dict | None = None) -> dict:
    out = copy.deepcopy(base or profile())
    *parents, leaf = path.split("/")
    node = out
    for key in parents:
        node = node[key]
    node[leaf] = value
    return out


def test_type_families():
    assert [type_family(t) for t in ("VARCHAR", "DATE", "BIGINT", "DOUBLE", "JSON", '"NULL"', "STRUCT(a INTEGER)",
                                          "BIGINT[]")] == ["text", "text", "number", "number", "null", "null",
                                                           "nested", "nested"]


def test_columns_new_missing_and_retyped_are_named():
    landed = contract_columns()
    assert checks.check_columns(landed).passed
    landed = {**landed, "vin": "text", "price": "text"}
    del landed["mileage_km"]
    out = checks.check_columns(landed)
    assert not out.passed
    assert out.metrics["new"] == ["vin"] and out.metrics["missing"] == ["mileage_km"]
    assert out.metrics["retyped"] == ["price: number -> text"]
    assert checks.check_columns({**contract_columns(), "power_kw": "null"}).passed, "an all-null column is no retype"


def test_source_fields_missing_new_renamed_and_retyped():
    ref = profile()
    now = copy.deepcopy(ref)
    now["source_fields"]["mileage.value"] = now["source_fields"].pop("mileageFromOdometer.value")
    del now["source_fields"]["vehicleModelDate"]
    now["source_fields"]["offers.price"]["types"] = {"object": 1.0}
    out = checks.check_source_fields(now, ref, CFG)
    assert not out.passed
    assert out.metrics["missing"] == ["mileageFromOdometer.value", "vehicleModelDate"]
    assert out.metrics["new"] == ["mileage.value"]
    assert out.metrics["renamed"] == ["mileageFromOdometer.value -> mileage.value?"]
    assert out.metrics["retyped"] == ["offers.price: string -> object"]
    assert checks.check_source_fields(ref, ref, CFG).passed
    assert checks.check_source_fields(now, None, CFG).passed, "no reference yet: nothing to compare"


def test_values_against_the_source_reference_out_of_range_null_rise_duplicates_reposts_rejects():
    ref = profile()
    assert checks.check_values(profile(), ref, CFG).passed
    cases = {
        "out of plausible range: market_price 60.0% > 4.0%": changed("out_of_range_rate/market_price", 0.6),
        "null rates: mileage_km 90.0% > 6.5%": changed("null_rate/mileage_km", 0.9),
        "null rates: make 1.0% > 0.0%": changed("null_rate/make", 0.01),
        "duplicate rate 66.0% > 2.0% (reference 0.0% + 2%)": changed("duplicate_rate", 0.66),
        "repost rate 50.0% > 7.0% (reference 2.0% + 5%)": changed("repost_rate", 0.5),
        "reject rate 30.0% > 5.5% (reference 0.5% + 5%)": changed("reject_rate", 0.3),
        "impossible values: model_year 5.0% (max 1%)": changed("impossible_rate", {"model_year": 0.05}),
    }
    for expected, batch in cases.items():
        out = checks.check_values(batch, ref, CFG)
        assert not out.passed and any(f.startswith(expected) for f in out.failures), (expected, out.failures)
    assert checks.check_values(profile(n=0), ref, CFG).failures == ["no listings in the batch"]


def test_a_source_whose_normal_is_messy_is_judged_against_its_own_normal():
    # A classifieds site: placeholder prices, fields it never publishes, reposts. Its reviewed reference says so.
    messy = changed("out_of_range_rate/market_price", 0.155, changed("repost_rate", 0.245, changed(
        "null_rate/power_kw", 1.0, changed("null_rate/seller_type", 1.0))))
    assert checks.check_values(messy, messy, CFG).passed
    assert checks.check_values(changed("repost_rate", 0.26, messy), messy, CFG).passed, "a small move is normal"
    worse = checks.check_values(changed("out_of_range_rate/market_price", 0.4, messy), messy, CFG)
    assert worse.failures == ["out of plausible range: market_price 40.0% > 18.5%"]


def test_a_new_source_is_held_for_onboarding_with_its_profile_and_only_the_absolute_contract_applies():
    messy = changed("out_of_range_rate/market_price", 0.155, changed("repost_rate", 0.245, changed(
        "null_rate/power_kw", 1.0)))
    assert checks.check_values(messy, None, CFG).passed, "nothing to compare rates with yet"
    assert checks.check_values(changed("null_rate/make", 0.2), None, CFG).failures == ["null rates: make 20.0% > 0.0%"]
    impossible = checks.check_values(changed("impossible_rate", {"market_price": 0.02}), None, CFG)
    assert impossible.failures == ["impossible values: market_price 2.0% (max 1%)"]
    held = checks.check_onboarded(messy, None)
    assert not held.passed and held.failures[0].startswith("first batch of a new source: held for review")
    assert "never published: power_kw" in held.failures[0] and "implausible: market_price 16%" in held.failures[0]
    assert held.metrics["fields_never_published"] == ["power_kw"] and held.metrics["repost_rate"] == 0.245
    assert held.metrics["ranges_p1_p50_p99"]["mileage_km"] == [2000.0, 100000.0, 198000.0]
    assert checks.check_onboarded(messy, messy).passed


def test_units_prices_mileage_and_currencies():
    ref = profile()
    assert checks.check_units(profile(), ref, CFG).passed
    out = checks.check_units(profile(median_market_price=1_200_000.0), ref, CFG)
    assert out.failures == ["prices on another scale: median_market_price 1,200,000 is 100.00x the reference 12,000"]
    out = checks.check_units(profile(median_km_per_year=13000 * 1.609), ref, CFG)
    assert out.failures[0].startswith("mileage in another unit: median_km_per_year 20,917 is 1.61x")
    out = checks.check_units(changed("categories/currency", {"eur": 0.85, "gbp": 0.08, "pln": 0.07}), ref, CFG)
    assert out.failures == ["currencies not seen before: pln 7.0%"]
    out = checks.check_units(profile(reject_reasons={"unknown currency": 40}, n_rejects=40), ref, CFG)
    assert out.failures == ["40 listings rejected for their currency"]


def test_psi_and_wasserstein_on_known_numbers():
    same = {"a": 0.5, "b": 0.5}
    assert checks.psi(same, same) == 0.0
    assert checks.psi(same, {"a": 0.9, "b": 0.1}) == pytest.approx(0.4 * 0.5878 + -0.4 * -1.6094, rel=1e-3)
    assert checks.wasserstein_iqr(QUANTILES, QUANTILES) == 0.0
    shifted = [q + 10 for q in QUANTILES]
    assert checks.wasserstein_iqr(QUANTILES, shifted) == pytest.approx(10 / 50, rel=0.05)


def test_distributions_drift_is_scored_per_field():
    ref = profile()
    assert checks.check_distributions(profile(), ref, CFG).passed
    drifted = changed("categories/make", {"volkswagen": 0.8, "bmw": 0.1, "kia": 0.1})
    drifted["quantiles"]["mileage_km"] = [q * 2000 * 1.6 for q in QUANTILES]
    out = checks.check_distributions(drifted, ref, CFG)
    assert not out.passed
    assert out.metrics["scores"]["psi_make"] > CFG.psi_threshold
    assert out.metrics["scores"]["wasserstein_mileage_km"] > CFG.wasserstein_threshold
    assert [f.split(":")[0] for f in out.failures] == ["make drifted", "mileage_km drifted"]
    small = checks.check_distributions(profile(n=50), ref, CFG)
    assert small.passed and "skipped" in small.metrics


def test_run_checks_returns_every_check_in_order():
    outcomes = checks.run_checks(contract_columns(), profile(), profile(), CFG)
    assert [o.name for o in outcomes] == list(checks.ALL_CHECKS)
    assert all(o.passed for o in outcomes)


def test_merged_reference_pools_rates_and_averages_quantiles():
    a = profile(n=1000, n_rejects=10, median_market_price=10000.0)
    b = changed("null_rate/mileage_km", 0.115, profile(n=3000, n_rejects=30, median_market_price=14000.0,
                                                       batch_ids=["c"]))
    b["quantiles"]["power_kw"] = [q + 100 for q in a["quantiles"]["power_kw"]]
    b["categories"]["currency"] = {"eur": 1.0}
    b["source_fields"]["vehicleModelDate"] = {"share": 0.99, "types": {"number": 1.0}}
    merged = profile_module.merge_profiles([a, b])
    assert merged["n"] == 4000 and merged["batch_ids"] == ["b", "c"]
    assert merged["reject_rate"] == pytest.approx(40 / 4040)
    assert merged["null_rate"]["mileage_km"] == pytest.approx(0.25 * 0.015 + 0.75 * 0.115)
    assert merged["median_market_price"] == pytest.approx(13000.0)
    assert merged["quantiles"]["power_kw"][0] == pytest.approx(a["quantiles"]["power_kw"][0] + 75)
    assert merged["categories"]["currency"] == pytest.approx({"eur": 0.25 * 0.92 + 0.75, "gbp": 0.25 * 0.08})
    assert merged["source_fields"]["vehicleModelDate"]["types"] == pytest.approx({"string": 0.25, "number": 0.75})
    with pytest.raises(ValueError, match="empty batches"):
        profile_module.merge_profiles([profile(n=0)])


def test_landed_columns_reads_the_families_of_the_first_lines_and_skips_what_is_not_an_object():
    from carprice.validation.profile import landed_columns

    data = b"\n".join([b'{"a": null, "b": 1, "c": "x", "d": true}', b"{not json", b"[1]",
                       b'{"a": 2.5, "b": "2", "e": [1]}', b""])
    assert landed_columns(data) == {"a": "number", "b": "text", "c": "text", "d": "boolean", "e": "nested"}
    assert landed_columns(b"") == {}
    assert landed_columns(b'{"a": 1}\n{"b": 1}', sample_lines=1) == {"a": "number"}


def test_the_embedded_marketplace_ships_a_reviewed_reference_and_other_sources_none():
    from carprice.validation.profile import merge_profiles
    from carprice.validation.shipped import SHIPPED_REFERENCE_ID, shipped_reference

    reference_id, reference = shipped_reference("automarkt")
    assert reference_id == SHIPPED_REFERENCE_ID and reference["n"] > 1000
    assert set(profile()) - {"impossible_rate"} <= set(reference), "the shipped profile has every profile key"
    assert checks.check_onboarded(reference, reference).passed
    assert shipped_reference("dealer_export") is None
    # A reference stored before impossible_rate existed still merges with a new profile.
    old = {k: v for k, v in reference.items() if k != "impossible_rate"}
    assert merge_profiles([old, reference])["impossible_rate"] == reference["impossible_rate"]


def test_an_additional_property_that_vanishes_or_appears_is_reported_as_a_source_field():
    reference = profile(properties={"title_status": 0.97, "cylinders": 0.8})
    batch = profile(properties={"cylinders": 0.81, "drive": 0.9})
    out = checks.check_source_fields(batch, reference, CFG)
    assert out.metrics["missing"] == ["additionalProperty.title_status"]
    assert out.metrics["new"] == ["additionalProperty.drive"]
    # A reference profiled before properties were read does not judge them.
    assert checks.check_source_fields(batch, profile(), CFG).passed


def test_merged_reference_pools_property_shares_of_the_profiles_that_had_them():
    merged = profile_module.merge_profiles([profile(n=100, properties={"drive": 1.0}),
                                            profile(n=300, properties={"drive": 0.5, "size": 1.0}), profile(n=600)])
    assert merged["properties"] == {"drive": 0.625, "size": 0.75}
    assert "properties" not in profile_module.merge_profiles([profile()])


def test_a_landed_file_without_a_column_added_later_matches_the_contract():
    landed = contract_columns()
    del landed["properties"]
    out = checks.check_columns(landed)
    assert out.passed and out.metrics["absent_optional"] == ["properties"]
