"""Stage 2b: the blocking checks every landed batch passes before anything uses it, and people's
decisions on quarantined batches (the CLI's `batches readmit` does the same)."""

import dagster as dg

from carprice.defs.metadata import bullet_list, key_value_table
from carprice.defs.resources import WarehouseResource
from carprice.validation.admission import AdmissionError, Verdict, one_line_reason, readmit
from carprice.validation.checks import ALL_CHECKS, Outcome
from carprice.validation.store import READMITTED

CHECK_DESCRIPTIONS = {
    "source_reference_reviewed": "The source has a reference a person reviewed; a new source's first batch waits "
                                 "for that review (its profile is in the evidence).",
    "landed_columns_match_contract": "The landed file has the contract's columns, with their types.",
    "source_fields_match_reference": "Pages carry the schema.org fields the reference batches carried, with the "
                                     "same types.",
    "values_within_contract": "No impossible values; implausible shares, null rates, duplicates, reposts and spider "
                              "rejects stay near the source's reference.",
    "units_and_currencies_consistent": "Prices and mileages are on the reference's scale; no unseen currency.",
    "distributions_match_reference": "Key fields have not drifted from the reference (PSI, Wasserstein).",
}

# Checks are not partitioned (that is a preview feature in Dagster 1.13); each evaluation names its batch. They do
# not block in Dagster's sense (a failed blocking check fails its run, and Dagster marks every partition the run
# planned as failed): a quarantine is an outcome, not an error, so the admitted_batch gate stops the batch instead.
RAW_LISTINGS_CHECKS = [dg.AssetCheckSpec(name, asset="raw_listings", blocking=False,
                                         description=CHECK_DESCRIPTIONS[name]) for name in ALL_CHECKS]


def check_description(outcome: Outcome, verdict: Verdict) -> str:
    """The line the UI shows beside a check's evaluation: the batch, and what the check found."""
    if outcome.passed:
        return f"{verdict.batch_id}: passed"
    why = one_line_reason({outcome.name: outcome.failures}).removeprefix(outcome.name + ": ")
    if verdict.status == READMITTED:
        who = verdict.review["reviewer"] if verdict.review else "a reviewer"
        return f"{verdict.batch_id}: failed, then re-admitted by {who}: {why}"
    return f"{verdict.batch_id} {verdict.status}: {why}"


def check_result(outcome: Outcome, verdict: Verdict) -> dg.AssetCheckResult:
    """A check's verdict for Dagster, naming the batch; a failure a person re-admitted is a warning."""
    metadata = {"batch_id": verdict.batch_id, "verdict": verdict.status,
                "summary": dg.MetadataValue.text(outcome.summary),
                "failures": dg.MetadataValue.md(bullet_list(outcome.failures)),
                "evidence": dg.MetadataValue.md(key_value_table(outcome.metrics)),
                "reference_version": str(verdict.reference_id) if verdict.reference_id is not None else "none"}
    if not outcome.passed and verdict.status == READMITTED:
        metadata["readmitted_by"] = verdict.review["reviewer"] if verdict.review else ""
        return dg.AssetCheckResult(check_name=outcome.name, passed=True, severity=dg.AssetCheckSeverity.WARN,
                                   metadata=metadata, description=check_description(outcome, verdict))
    return dg.AssetCheckResult(check_name=outcome.name, passed=outcome.passed, severity=dg.AssetCheckSeverity.ERROR,
                               metadata=metadata, description=check_description(outcome, verdict))


class ReadmitConfig(dg.Config):
    """Which quarantined batch to let through, who decided, and why."""

    batch_id: str
    reviewer: str
    note: str


@dg.op(description="Record that a person reviewed a quarantined batch and re-admits it.")
def record_readmission(context: dg.OpExecutionContext, config: ReadmitConfig, warehouse: WarehouseResource) -> None:
    try:
        readmit(warehouse.get(), config.batch_id, config.reviewer, config.note)
    except AdmissionError as exc:
        raise dg.Failure(str(exc)) from exc
    context.log.info("batch %s re-admitted by %s; run batch_job for its partition to let it through",
                     config.batch_id, config.reviewer)


@dg.job(description="Re-admit a quarantined batch after review; then materialize its partition with batch_job.")
def readmit_job():
    record_readmission()
