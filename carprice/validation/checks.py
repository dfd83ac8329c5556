"""The checks a landed batch must pass, as pure functions of profiles, schemas and thresholds.

Each returns an Outcome: passed or not, the failures in words, and the numbers and thresholds behind
them, so a quarantined batch says exactly why. A source's first batch has no reference: it is held for a
person's review (``check_onboarded``), unless the project ships a reviewed reference for that source.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from carprice.config import ValidationConfig
from carprice.validation.contract import (
    CATEGORICAL_DRIFT,
    IGNORED_COLUMNS,
    NULL_TRACKED,
    NUMERIC_DRIFT,
    OPTIONAL_COLUMNS,
    REQUIRED,
    contract_columns,
)

CHECK_COLUMNS = "landed_columns_match_contract"
CHECK_SOURCE_FIELDS = "source_fields_match_reference"
CHECK_VALUES = "values_within_contract"
CHECK_UNITS = "units_and_currencies_consistent"
CHECK_DISTRIBUTIONS = "distributions_match_reference"
CHECK_ONBOARDED = "source_reference_reviewed"
ALL_CHECKS = (CHECK_ONBOARDED, CHECK_COLUMNS, CHECK_SOURCE_FIELDS, CHECK_VALUES, CHECK_UNITS, CHECK_DISTRIBUTIONS)


@dataclass
class Outcome:
    """One check's verdict with its evidence."""

    name: str
    passed: bool
    failures: list[str] = field(default_factory=list)
    metrics: dict = field(default_factory=dict)

    @property
    def summary(self) -> str:
        return "passed" if self.passed else "; ".join(self.failures)


def _outcome(name: str, failures: list[str], metrics: dict) -> Outcome:
    return Outcome(name=name, passed=not failures, failures=failures, metrics=metrics)


def check_columns(landed: dict[str, str], contract: dict[str, str] | None = None) -> Outcome:
    """The landed file's columns (name -> type family) against the contract: new, missing, retyped."""
    contract = contract or contract_columns()
    new = sorted(set(landed) - set(contract) - set(IGNORED_COLUMNS))
    absent = set(contract) - set(landed)
    missing = sorted(absent - set(OPTIONAL_COLUMNS))
    retyped = sorted(f"{c}: {contract[c]} -> {landed[c]}" for c in set(landed) & set(contract)
                     if landed[c] not in (contract[c], "null"))
    failures = ([f"new columns {new}"] if new else []) + ([f"missing columns {missing}"] if missing else []) \
        + ([f"retyped columns {retyped}"] if retyped else [])
    return _outcome(CHECK_COLUMNS, failures, {"new": new, "missing": missing, "retyped": retyped,
                                              "absent_optional": sorted(absent & set(OPTIONAL_COLUMNS)),
                                              "columns": len(landed), "contract_columns": len(contract)})


def check_source_fields(batch: dict, reference: dict | None, cfg: ValidationConfig) -> Outcome:
    """The schema.org fields pages carry, against the reference: missing, new, renamed, retyped."""
    if reference is None:
        return _outcome(CHECK_SOURCE_FIELDS, [], {"reference": "none yet: this batch starts it"})
    if not batch["source_fields"] and not reference["source_fields"]:
        return _outcome(CHECK_SOURCE_FIELDS, [], {"note": "the source has no page schema (a file import)"})
    now, ref = batch["source_fields"], reference["source_fields"]
    missing = sorted(k for k, v in ref.items() if v["share"] >= cfg.field_present_share
                     and now.get(k, {"share": 0.0})["share"] < cfg.field_missing_share)
    new = sorted(k for k, v in now.items() if v["share"] >= cfg.field_new_share
                 and ref.get(k, {"share": 0.0})["share"] < cfg.field_missing_share)
    if "properties" in reference:  # a reference profiled before properties were read cannot judge them
        now_props, ref_props = batch.get("properties", {}), reference["properties"]
        missing += sorted(f"additionalProperty.{k}" for k, share in ref_props.items()
                          if share >= cfg.field_present_share and now_props.get(k, 0.0) < cfg.field_missing_share)
        new += sorted(f"additionalProperty.{k}" for k, share in now_props.items()
                      if share >= cfg.field_new_share and ref_props.get(k, 0.0) < cfg.field_missing_share)
    retyped = []
    for key in sorted(set(now) & set(ref)):
        if ref[key]["share"] < cfg.field_present_share or now[key]["share"] < cfg.field_present_share:
            continue
        before, after = _dominant(ref[key]["types"]), _dominant(now[key]["types"])
        if before != after:
            retyped.append(f"{key}: {before} -> {after}")
    renamed = [f"{m} -> {n}?" for m in missing for n in new if m.rsplit(".", 1)[-1] == n.rsplit(".", 1)[-1]
               or m.split(".", 1)[-1] == n.split(".", 1)[-1]]
    failures = ([f"missing fields {missing}"] if missing else []) + ([f"new fields {new}"] if new else []) \
        + ([f"possibly renamed {renamed}"] if renamed else []) + ([f"retyped fields {retyped}"] if retyped else [])
    return _outcome(CHECK_SOURCE_FIELDS, failures, {
        "missing": missing, "new": new, "renamed": renamed, "retyped": retyped,
        "thresholds": {"present_share": cfg.field_present_share, "missing_share": cfg.field_missing_share,
                       "new_share": cfg.field_new_share}})


def _dominant(types: dict[str, float]) -> str:
    return max(types.items(), key=lambda kv: kv[1])[0] if types else "none"


def check_values(batch: dict, reference: dict | None, cfg: ValidationConfig) -> Outcome:
    """Impossible values (absolute), then against the source's reference: plausible-range shares, null rates,
    duplicates, reposts and the spider's reject rate."""
    failures: list[str] = []
    metrics: dict = {"rows": batch["n"]}
    if batch["n"] == 0:
        return _outcome(CHECK_VALUES, ["no listings in the batch"], metrics)
    impossible = {f: r for f, r in batch.get("impossible_rate", {}).items() if r and r > cfg.max_impossible_rate}
    if impossible:
        failures.append("impossible values: " + ", ".join(f"{f} {r:.1%}" for f, r in impossible.items())
                        + f" (max {cfg.max_impossible_rate:.0%})")
    ref = reference or {}
    # Without a reference (a source being onboarded) only the absolute contract and required fields apply.
    out = {}
    for f, r in batch["out_of_range_rate"].items():
        allowed = (ref.get("out_of_range_rate", {}).get(f) or 0.0) + cfg.out_of_range_rise
        if reference is not None and r and r > allowed:
            out[f] = {"now": round(r, 4), "allowed": round(allowed, 4)}
    if out:
        failures.append("out of plausible range: " + ", ".join(f"{f} {v['now']:.1%} > {v['allowed']:.1%}"
                                                                for f, v in out.items()))
    null_rise = {}
    for f in NULL_TRACKED:
        now = batch["null_rate"].get(f) or 0.0
        allowed = _allowed_null_rate(f, reference, cfg)
        if now > allowed:
            null_rise[f] = {"now": round(now, 4), "allowed": round(allowed, 4)}
    if null_rise:
        failures.append("null rates: " + ", ".join(f"{f} {v['now']:.1%} > {v['allowed']:.1%}"
                                                   for f, v in null_rise.items()))
    limits = {}
    for name, rise in (("duplicate_rate", cfg.duplicate_rate_rise), ("repost_rate", cfg.repost_rate_rise),
                       ("reject_rate", cfg.reject_rate_rise)):
        metrics[name] = round(batch[name], 4)
        limits[name] = round((ref.get(name) or 0.0) + rise, 4)
        if reference is not None and batch[name] > limits[name]:
            failures.append(f"{name.replace('_', ' ')} {batch[name]:.1%} > {limits[name]:.1%} "
                            f"(reference {ref.get(name) or 0.0:.1%} + {rise:.0%})")
    metrics.update({"out_of_range": {f: round(r, 4) for f, r in batch["out_of_range_rate"].items() if r},
                    "out_of_range_over_allowed": out, "impossible": impossible,
                    "null_rate_over_allowed": null_rise,
                    "top_reject_reasons": dict(list(batch["reject_reasons"].items())[:5]),
                    "limits": limits if reference is not None else "onboarding: no reference yet",
                    "thresholds": {"out_of_range_rise": cfg.out_of_range_rise,
                                   "max_impossible_rate": cfg.max_impossible_rate,
                                   "null_rate_tolerance": cfg.null_rate_tolerance,
                                   "duplicate_rate_rise": cfg.duplicate_rate_rise,
                                   "repost_rate_rise": cfg.repost_rate_rise, "reject_rate_rise": cfg.reject_rate_rise}})
    return _outcome(CHECK_VALUES, failures, metrics)


def _allowed_null_rate(field_name: str, reference: dict | None, cfg: ValidationConfig) -> float:
    """Required fields are never null; others may rise a little over the reference (anything goes before one)."""
    if field_name in REQUIRED:
        return 0.0
    if reference is None:
        return 1.0
    return (reference["null_rate"].get(field_name) or 0.0) + cfg.null_rate_tolerance


def onboarding_summary(batch: dict) -> dict:
    """What a reviewer needs to know of a new source's first batch: which fields it publishes, how often its
    values are implausible, reposts, currencies and value ranges."""
    nulls = batch["null_rate"]
    ranges = {}
    for name, q in batch["quantiles"].items():
        if q:
            low, mid, high = q[0], q[len(q) // 2], q[-1]
            ranges[name] = [round(v, 2) for v in (low, mid, high)]
    return {
        "listings": batch["n"], "rejected_pages": batch["n_rejects"],
        "fields_published": sorted(f for f in NULL_TRACKED if (nulls.get(f) or 0.0) < 1.0),
        "fields_never_published": sorted(f for f in NULL_TRACKED if (nulls.get(f) or 0.0) >= 1.0),
        "null_rates": {f: round(r, 3) for f, r in nulls.items() if r},
        "implausible_shares": {f: round(r, 3) for f, r in batch["out_of_range_rate"].items() if r},
        "repost_rate": round(batch["repost_rate"], 3), "duplicate_rate": round(batch["duplicate_rate"], 3),
        "currencies": {c: round(s, 3) for c, s in batch["categories"].get("currency", {}).items()},
        "ranges_p1_p50_p99": ranges,
    }


def check_onboarded(batch: dict, reference: dict | None) -> Outcome:
    """A source is judged against a reference a person reviewed: its first batch is held until someone has."""
    if reference is not None:
        return _outcome(CHECK_ONBOARDED, [], {"reference_batches": len(reference.get("batch_ids", []))})
    summary = onboarding_summary(batch)
    never = ", ".join(summary["fields_never_published"]) or "none"
    implausible = ", ".join(f"{f} {r:.0%}" for f, r in summary["implausible_shares"].items()) or "none"
    currencies = ", ".join(f"{c} {s:.0%}" for c, s in summary["currencies"].items()) or "none"
    return _outcome(CHECK_ONBOARDED, [
        f"first batch of a new source: held for review ({summary['listings']} listings; never published: {never}; "
        f"implausible: {implausible}; reposts {summary['repost_rate']:.0%}; currencies {currencies}). "
        "Re-admitting it makes its profile the source's reference"], summary)


def check_units(batch: dict, reference: dict | None, cfg: ValidationConfig) -> Outcome:
    """Units and currencies: prices on the same scale, mileage in the same unit, no unseen currency, a rate for
    every currency (a listing without one is kept, but cannot be priced in the market currency)."""
    if reference is None:
        return _outcome(CHECK_UNITS, [], {"reference": "none yet: this batch starts it"})
    failures = []
    metrics: dict = {"thresholds": {"max_price_scale": cfg.max_price_scale, "max_mileage_scale": cfg.max_mileage_scale,
                                    "max_unseen_currency_share": cfg.max_unseen_currency_share}}
    for key, limit, hint in (("median_market_price", cfg.max_price_scale, "prices on another scale"),
                             ("median_km_per_year", cfg.max_mileage_scale, "mileage in another unit")):
        now, ref = batch.get(key), reference.get(key)
        if now and ref:
            ratio = now / ref
            metrics[f"{key}_ratio"] = round(ratio, 3)
            if ratio > limit or ratio < 1 / limit:
                failures.append(f"{hint}: {key} {now:,.0f} is {ratio:.2f}x the reference {ref:,.0f}")
    unseen = {c: s for c, s in batch["categories"].get("currency", {}).items()
              if c not in reference["categories"].get("currency", {}) and s > cfg.max_unseen_currency_share}
    currency_rejects = sum(n for reason, n in batch["reject_reasons"].items() if "currency" in reason)
    unrated = batch.get("unrated_currencies", {})
    metrics.update({"unseen_currencies": unseen, "currency_rejects": currency_rejects,
                    "unrated_currencies": unrated})
    if unseen:
        failures.append("currencies not seen before: " + ", ".join(f"{c} {s:.1%}" for c, s in unseen.items()))
    if batch["n"] and currency_rejects / (batch["n"] + batch["n_rejects"]) > cfg.max_unseen_currency_share:
        failures.append(f"{currency_rejects} listings rejected for their currency")
    if batch["n"] and sum(unrated.values()) > cfg.max_unseen_currency_share:
        failures.append("no exchange rate on the listing date for " + ", ".join(
            f"{c} {s:.1%}" for c, s in unrated.items()) + " (add the rates to the rate file, then re-admit)")
    return _outcome(CHECK_UNITS, failures, metrics)


def psi(expected: dict[str, float], actual: dict[str, float], floor: float = 1e-4, min_share: float = 0.01) -> float:
    """Population stability index of two category-share maps; rare reference categories share one bin."""
    keys = [k for k, v in expected.items() if v >= min_share]
    bins = lambda shares: [shares.get(k, 0.0) for k in keys] + [1 - sum(shares.get(k, 0.0) for k in keys)]  # noqa: E731
    return float(sum((a - e) * math.log(max(a, floor) / max(e, floor))
                     for e, a in zip(bins(expected), bins(actual))))


def wasserstein_iqr(reference_q: list[float], batch_q: list[float]) -> float:
    """Wasserstein-1 distance between two distributions given by matching quantiles, in reference IQRs."""
    n = len(reference_q)
    iqr = reference_q[int(0.75 * n)] - reference_q[int(0.25 * n)]
    distance = sum(abs(a - b) for a, b in zip(reference_q, batch_q)) / n
    return distance / iqr if iqr > 0 else (0.0 if distance == 0 else math.inf)


def check_distributions(batch: dict, reference: dict | None, cfg: ValidationConfig) -> Outcome:
    """Drift of key fields against the reference: PSI for categories, Wasserstein (in IQRs) for numbers."""
    if reference is None:
        return _outcome(CHECK_DISTRIBUTIONS, [], {"reference": "none yet: this batch starts it"})
    if batch["n"] < cfg.min_rows_for_drift:
        return _outcome(CHECK_DISTRIBUTIONS, [], {"skipped": f"{batch['n']} rows < {cfg.min_rows_for_drift}"})
    scores: dict[str, float] = {}
    failures = []
    for f in CATEGORICAL_DRIFT:
        scores[f"psi_{f}"] = round(psi(reference["categories"].get(f, {}), batch["categories"].get(f, {})), 4)
        if scores[f"psi_{f}"] > cfg.psi_threshold:
            failures.append(f"{f} drifted: PSI {scores[f'psi_{f}']:.2f} > {cfg.psi_threshold}")
    for f in NUMERIC_DRIFT:
        ref_q, now_q = reference["quantiles"].get(f), batch["quantiles"].get(f)
        if not ref_q or not now_q:
            continue
        scores[f"wasserstein_{f}"] = round(wasserstein_iqr(ref_q, now_q), 4)
        if scores[f"wasserstein_{f}"] > cfg.wasserstein_threshold:
            failures.append(f"{f} drifted: Wasserstein {scores[f'wasserstein_{f}']:.2f} IQR > "
                            f"{cfg.wasserstein_threshold}")
    return _outcome(CHECK_DISTRIBUTIONS, failures, {"scores": scores, "thresholds": {
        "psi": cfg.psi_threshold, "wasserstein_iqr": cfg.wasserstein_threshold}})


def run_checks(landed_columns: dict[str, str], batch: dict, reference: dict | None,
               cfg: ValidationConfig) -> list[Outcome]:
    """Every check, in order; the batch is admitted only when all pass."""
    return [check_onboarded(batch, reference), check_columns(landed_columns),
            check_source_fields(batch, reference, cfg), check_values(batch, reference, cfg),
            check_units(batch, reference, cfg),
            check_distributions(batch, reference, cfg)]
