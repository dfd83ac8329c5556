"""People's decisions on quarantined batches, as a Dagster job (the CLI does the same)."""

import dagster as dg

from carprice.defs.resources import WarehouseResource
from carprice.validation.admission import AdmissionError, readmit


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
