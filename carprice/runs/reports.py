"""What a simulated day (or a run started by hand) did, filled from its runs and the warehouse, and rendered."""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from carprice.analysts import sql_command
from carprice.config import DEFAULT_DATA_DIR, ENV_VARS, UI_PORT, Settings
from carprice.monitoring.store import alert_counts, request_counts
from carprice.runs.launcher import LaunchedRun, PipelineError, first_failure, materialization_metadata
from carprice.validation.store import failed_checks, status_of
from carprice.warehouse import Warehouse


def look_commands(settings: Settings) -> tuple[str, str]:
    """The commands a summary suggests for this installation: query its snapshot, open its UI.

    Both name the data folder (the UI command also the Dagster home) the run used when they are not the
    defaults, so they open what the run wrote.
    """
    data_dir = settings.data_dir if settings.data_dir.resolve() != DEFAULT_DATA_DIR.resolve() else None
    query = sql_command(data_dir)
    ui = ".venv/bin/carprice ui"
    if settings.dagster_home.resolve() != (settings.data_dir / "dagster").resolve():
        ui = f"{ENV_VARS['dagster_home']}={shlex.quote(str(settings.dagster_home))} {ui}"
    if data_dir is not None:
        ui += f" --data-dir {shlex.quote(str(data_dir))}"
    return query, ui


def mape_against_model(monitoring: dict) -> str:
    """The champion's MAPE on new listings beside its own evaluation MAPE, the change said as relative."""
    said = [f"model's own {100 * monitoring['reference_mape']:.1f}%"] if monitoring.get("reference_mape") is not None \
        else []
    if monitoring.get("decay") is not None:
        said.append(f"{100 * monitoring['decay']:+.0f}% relative" + ("" if said else " to the model's own"))
    return f"{100 * monitoring['mape']:.1f}%" + (f" ({', '.join(said)})" if said else "")


@dataclass
class DayReport:
    """What one simulated day did: the crawl, each batch's checks and monitoring, and any training."""

    day: int
    date: str
    settings: Settings  # the installation the day ran on (not part of the JSON: its paths are)
    batch_id: str = ""
    status: str = "no batch"
    scraped: int = 0
    crawl_rejects: int = 0
    pages: int = 0
    pages_per_second: float = 0.0
    failed_checks: dict[str, str] = field(default_factory=dict)
    accepted: int = 0
    excluded: int = 0
    valued: int = 0
    deals: int = 0
    monitoring: dict = field(default_factory=dict)
    trigger: str = ""
    trained_because: str = ""
    challenger: str | None = None
    promoted: bool = False
    promotion_reason: str = ""
    metrics: dict = field(default_factory=dict)
    # Why the retraining sensor started no training (the wait for more batches, or no trigger yet).
    training_wait: str = ""
    baselines: dict = field(default_factory=dict)
    model_version: str | None = None
    seconds: float = 0.0
    run_ids: list[str] = field(default_factory=list)
    warehouse: Path | None = None
    snapshot: Path | None = None
    dagster_home: Path | None = None
    # Runs that failed for another reason than validation (each named, with its cause); the others went on.
    errors: list[str] = field(default_factory=list)
    # A day that crawls several sources has several batches: the one above (an admitted one when there is one),
    # and these, each with its status and, when quarantined, why.
    other_batches: dict[str, str] = field(default_factory=dict)

    @property
    def admitted(self) -> bool:
        from carprice.validation.admission import ADMITTED

        return self.status in ADMITTED

    @property
    def all_admitted(self) -> bool:
        """Whether no batch of the day was held back (a day without a batch holds none back)."""
        return not self.quarantined_batches

    @property
    def quarantined_batches(self) -> list[str]:
        """Every batch of the day that was not admitted."""
        others = [b for b, why in self.other_batches.items() if not why.startswith(("accepted", "readmitted"))]
        return ([self.batch_id] if self.batch_id and not self.admitted else []) + others

    def line(self) -> str:
        """One line for the multi-day progress and summary."""
        parts = [f"day {self.day:>4} {self.date}", f"{self.status:<11}", f"listings {self.scraped:>5}"]
        if not self.admitted:
            parts.append("failed: " + ", ".join(self.failed_checks) if self.failed_checks else "")
        else:
            m = self.monitoring
            if m.get("drift_share") is not None:
                parts.append(f"drift {m['drifted_columns']}/{m['n_columns']} cols")
                parts.append(f"pred drift {m['prediction_drift_score']:.3f}")
                if m.get("mape") is not None:
                    parts.append(f"MAPE new {mape_against_model(m)}")
            elif m:
                parts.append(str(m.get("status", "")))
            if m.get("trigger_kinds") and not self.challenger:
                parts.append(f"{m['trigger_kinds'].replace(',', '+')} alert: {self.waiting_for or 'no training'}")
        if self.challenger:
            parts.append(f"trained ({self.trigger or 'by hand'}) -> "
                         + ("PROMOTED" if self.promoted else "REJECTED, champion kept"))
        parts.append(f"serving {self.model_version or 'none'}")
        if self.other_batches:
            parts.append(f"+{len(self.other_batches)} batch(es), {len(self.quarantined_batches)} quarantined")
        if self.errors:
            parts.append(f"{len(self.errors)} run(s) FAILED")
        return " | ".join(p for p in parts if p)

    @property
    def waiting_for(self) -> str:
        """"waiting for N batches" when the retraining sensor waits for more batches before it trains."""
        found = re.search(r"waiting for \d+ batch(es)?", self.training_wait)
        return found.group(0) if found else ""

    def render(self) -> str:
        """The detailed summary printed after `carprice run`."""
        currency = self.settings.market_currency
        lines = ["", f"carprice: day {self.day} ({self.date}) finished, batch {self.status}",
                 f"  batch            {self.batch_id}"]
        if self.pages:
            lines += [f"  pages crawled    {self.pages} ({self.pages_per_second:.0f} pages/s)",
                      f"  listings         scraped {self.scraped}, rejected by the spider {self.crawl_rejects}"]
        if self.admitted:
            lines += [f"  clean listings   {self.accepted} in the warehouse (all batches), {self.excluded} excluded "
                      "by cleaning"]
            m = self.monitoring
            if m.get("drift_share") is not None:
                lines += [f"  monitoring       {m['drifted_columns']} of {m['n_columns']} columns drifted, "
                          f"prediction drift {m['prediction_drift_score']:.3f}"
                          + (f", MAPE on new listings {mape_against_model(m)}" if m.get("mape") is not None
                             else ""),
                          f"  report           {m.get('report_url', '')}"]
            elif m:
                lines += [f"  monitoring       {m.get('status', '')}"]
            if m.get("trigger_reasons"):
                lines += [f"  retraining asked {'; '.join(m['trigger_reasons'])}"]
            if self.challenger:
                lines += [f"  trained because  ({self.trigger or 'by hand'}) {self.trained_because}",
                          f"  challenger       {self.challenger} {'PROMOTED' if self.promoted else 'rejected'}: "
                          f"{self.promotion_reason}"]
                if self.metrics:
                    mm = self.metrics
                    lines += [f"  on fresh data    MAE {mm['mae']:,.0f} {currency} | median abs % error "
                              f"{100 * mm['median_ape']:.1f}% | R² {mm['r2']:.3f} | 90% interval coverage "
                              f"{100 * mm.get('interval_coverage', float('nan')):.0f}% | n={mm['n']}"]
                lines += [f"  baseline         {name}: MAE {mae:,.0f} {currency}"
                          for name, mae in self.baselines.items()]
            else:
                lines += [f"  training         {self.training_wait or 'none started'}"]
            lines += [f"  serving model    {self.model_version or 'none yet'}",
                      f"  valued listings  {self.valued}, of which {self.deals} deals (asking below the interval)"]
        elif self.batch_id:
            lines += ["  QUARANTINED: the batch stays in raw_listings; nothing downstream was touched"]
            lines += [f"    {name}: {why}" for name, why in self.failed_checks.items()]
            lines += [f"  serving model    {self.model_version or 'none yet'} (unchanged)",
                      f"  after review     .venv/bin/carprice batches readmit {self.batch_id} --by NAME --note WHY"]
        lines += [f"  other batch      {batch_id} {why}" for batch_id, why in self.other_batches.items()]
        lines += [f"  RUN FAILED       {error}" for error in self.errors]
        if self.errors:
            lines += ["  retried          by the landing sensor; see: carprice batches list --status unfinished"]
        query, ui = look_commands(self.settings)
        lines += [
            f"  took             {self.seconds:.0f} s",
            f"  warehouse        {self.warehouse}",
            f"  analysts query   {query}   (a snapshot: never blocks a run)",
            f"  dagster home     {self.dagster_home}",
            f"  open the UI      {ui}   (then http://127.0.0.1:{UI_PORT})",
        ]
        return "\n".join(lines)

    def to_json(self) -> str:
        fields = {k: v for k, v in self.__dict__.items() if k != "settings"}
        return json.dumps(fields | {"admitted": self.admitted}, indent=2, default=str)


def render_days(reports: list[DayReport], settings: Settings) -> str:
    """What happened each day, then the totals and where to look."""
    wh = Warehouse(settings.warehouse_path)
    alerts, requests = alert_counts(wh), request_counts(wh)
    quarantined = [b for r in reports for b in r.quarantined_batches]
    trained = [r for r in reports if r.challenger]
    query, ui = look_commands(settings)
    lines = ["", f"carprice: {len(reports)} simulated days", *[f"  {r.line()}" for r in reports], "",
             f"  batches          {sum(bool(r.batch_id) + len(r.other_batches) for r in reports) - len(quarantined)} "
             f"accepted, {len(quarantined)} quarantined" + (f" ({', '.join(quarantined)})" if quarantined else ""),
             f"  trainings        {len(trained)}, promoted {sum(r.promoted for r in trained)}: "
             + "; ".join(f"day {r.day} {r.trigger} ({'promoted' if r.promoted else 'rejected'})" for r in trained),
             "  retrain requests " + (", ".join(f"{kind} {n}" for kind, n in requests.items()) or "none"),
             "  alerts           " + (", ".join(f"{kind} {n}" for kind, n in alerts.items()) or "none"),
             f"  serving model    {reports[-1].model_version}",
             *[f"  RUN FAILED       day {r.day}: {error}" for r in reports for error in r.errors],
             f"  reports          {settings.reports_dir} (served by `carprice ui` at {settings.reports_url})",
             f"  analysts query   {query}",
             f"  dagster home     {settings.dagster_home}",
             f"  open the UI      {ui}   (then http://127.0.0.1:{UI_PORT})"]
    return "\n".join(lines)


# --- filling a report from runs ------------------------------------------------------------------------------


def report_batch(report: DayReport, run: LaunchedRun) -> None:
    """Fill ``report`` from one batch_job run and the warehouse."""
    from carprice.defs.monitoring import summary_numbers
    from carprice.validation.admission import ADMITTED

    batch_id = run.partition or ""
    wh = Warehouse(report.settings.warehouse_path)
    status = status_of(wh, batch_id)
    if status is None:
        raise PipelineError(f"batch {batch_id} was not validated (run {run.result.run_id}): "
                            f"{first_failure(run.result)}")
    if status in ADMITTED and not run.result.success:
        raise PipelineError(f"batch {batch_id} was admitted but run {run.result.run_id} failed downstream: "
                            f"{first_failure(run.result)}")
    if report.status != "no batch":  # the day's second batch (another source's)
        failed = "; ".join(failed_checks(wh, batch_id)) if status not in ADMITTED else ""
        if report.admitted or status not in ADMITTED:
            report.other_batches[batch_id] = status + (f": failed {failed}" if failed else "")
            return
        report.other_batches[report.batch_id] = report.status + (
            f": failed {', '.join(report.failed_checks)}" if report.failed_checks else "")
        report.failed_checks = {}
    report.batch_id, report.status = batch_id, status
    if report.admitted:
        clean = materialization_metadata(run.result, "clean_listings")
        report.accepted, report.excluded = clean["dagster/row_count"], clean["excluded"]
        report.monitoring = summary_numbers(materialization_metadata(run.result, "batch_monitoring"))
    else:
        report.failed_checks = {name: "; ".join(failures)
                                for name, failures in failed_checks(wh, batch_id).items()}


def report_training(report: DayReport, run: LaunchedRun) -> None:
    """Fill ``report`` from one training_job run: why it trained, the challenger, the promotion decision."""
    from carprice.defs.training import serving_scores
    from carprice.monitoring.retraining import TRIGGER_KIND_TAG

    if not run.result.success:
        raise PipelineError(f"training run {run.result.run_id} failed: {first_failure(run.result)}")
    model = materialization_metadata(run.result, "challenger_model")
    decision = materialization_metadata(run.result, "champion_model")
    report.trigger = run.tags.get(TRIGGER_KIND_TAG, "")
    report.challenger, report.trained_because = model["version"], model["trained_because"]
    report.promoted, report.promotion_reason = decision["promoted"], decision["reason"]
    report.metrics = serving_scores(decision)
    report.baselines = {k.removeprefix("baseline_").removesuffix("_mae"): v for k, v in decision.items()
                        if k.startswith("baseline_")}


def finish_report(report: DayReport) -> DayReport:
    """Complete ``report`` with what serves now: the champion, the valuations and deals, where the data is."""
    from carprice.training.registry import NoChampionError, champion

    settings = report.settings
    wh = Warehouse(settings.warehouse_path)
    try:
        report.model_version = champion(wh).version
    except NoChampionError:
        report.model_version = None
    report.valued, report.deals = wh.count("listing_valuations"), wh.count("deals")
    report.warehouse, report.snapshot, report.dagster_home = (settings.warehouse_path, settings.snapshot_path,
                                                              settings.dagster_home)
    return report
