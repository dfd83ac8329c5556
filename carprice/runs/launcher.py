"""Launch the runs the definitions' own schedule and sensors request, on the project's persistent instance.

``Automation`` evaluates a schedule or a sensor as the Dagster daemon would and executes the runs it asks
for in process, with the tags the daemon would give them: the daily crawl schedule crawls the marketplace
as it is on the tick's date, the landing sensor turns each new batch into a ``batch_job`` run, and the
retraining sensor starts ``training_job`` when the cadence is reached or a batch's monitoring asks for it.
``carprice ui`` runs the same schedule and sensors in the Dagster daemon on the wall clock.

Runs are created as the daemon creates them, with the remote origin of the project's code location (the one
``carprice ui`` loads), and each evaluation is recorded as a tick of its schedule or sensor: the UI lists them
under their job, in the Overview timeline and in the schedule's and sensors' tick history.
"""

from __future__ import annotations

import contextlib
import re
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime

import dagster as dg
from dagster._core.definitions.job_base import InMemoryJob
from dagster._core.definitions.selector import InstigatorSelector
from dagster._core.execution.api import execute_run
from dagster._core.execution.execute_in_process import merge_run_tags
from dagster._core.execution.execution_result import ExecutionResult
from dagster._core.remote_origin import RemoteRepositoryOrigin
from dagster._core.scheduler.instigation import InstigatorTick, InstigatorType, TickData, TickStatus
from dagster._core.storage.tags import TICK_ID_TAG
from dagster._utils.error import serializable_error_info_from_exc_info

from carprice.config import POOL_WAIT_S, PROJECT_DIR, Settings
from carprice.ingest.landing import remove_stale_tmp
from carprice.runs.instance import prepare_dagster_home, prepare_sources, process_tags, reap_dead_runs, wait_for_pool

# The instance keeps every event; the terminal only needs INFO and above.
_QUIET = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}
# The tag Dagster gives a failed run to say why, and its value for a run stopped by Ctrl-C or SIGTERM.
FAILURE_REASON_TAG, INTERRUPTED = "dagster/failure_reason", "UNEXPECTED_TERMINATION"

Progress = Callable[[str], object]


class PipelineError(RuntimeError):
    """A run that failed for a reason other than validation; names the run and the failing step."""


def _exception_line(message: str) -> str:
    """The line of an error message that names the exception ("BatchError: ..."), else its last real line."""
    lines = [ln.strip() for ln in message.splitlines() if ln.strip().strip("^~ ")]
    named = [ln for ln in lines if re.match(r"^[A-Za-z_][\w.]*(Error|Exception|Failure|Exit)\b.*?: ", ln)]
    return (named or lines or [""])[-1]


def first_failure(result: ExecutionResult) -> str:
    """The first failed step of ``result`` and the last line of its cause (for error messages)."""
    for event in result.all_events:
        if event.event_type_value == "STEP_FAILURE":
            error = event.step_failure_data.error if event.step_failure_data else None
            cause = error.cause.message.strip() if error and error.cause else (error.message.strip() if error else "")
            return f"step {event.step_key} failed: {_exception_line(cause) or event.message}"
    return "the run failed"


def materialization_metadata(result: ExecutionResult, asset: str) -> dict:
    """The metadata of ``asset``'s materialization in ``result``."""
    events = result.asset_materializations_for_node(asset)
    if not events:
        raise PipelineError(f"run {result.run_id} did not materialize {asset}: {first_failure(result)}")
    return {k: v.value for k, v in events[-1].metadata.items()}


def code_location_origin():
    """Where the UI and the daemon load the definitions from: the code location the project's pyproject.toml
    names (``dg dev`` and ``dagster dev`` read it), worked out without starting its code server."""
    from dagster._core.workspace.load_target import PyProjectFileTarget

    (origin,) = PyProjectFileTarget(str(PROJECT_DIR / "pyproject.toml")).create_origins()
    return origin


@dataclass
class LaunchedRun:
    """A run the automation requested and executed: who asked, for what, and how it ended."""

    origin: str
    job: str
    partition: str | None
    result: ExecutionResult
    seconds: float
    tags: dict[str, str]


class Automation:
    """The definitions' own schedule and sensors, ticked on a simulated clock against a persistent instance."""

    def __init__(self, settings: Settings, progress: Progress = print, pool_wait_s: float = POOL_WAIT_S):
        from carprice.definitions import build_definitions

        prepare_dagster_home(settings)
        self.settings = settings
        self.instance = dg.DagsterInstance.get()
        for run_id in reap_dead_runs(self.instance):
            progress(f"    run {run_id[:8]} was left unfinished by a process that is gone: marked failed, "
                     "its warehouse slot freed")
        for folder in remove_stale_tmp(settings.landing_dir):
            progress(f"    removed {folder}: the unfinished batch of a crawl that is gone")
        prepare_sources(settings, self.instance)
        self.defs = build_definitions(settings)
        self.repository = self.defs.get_repository_def()
        # The repository as the workspace knows it: runs created with its job origins belong to the code location.
        self.origin = RemoteRepositoryOrigin(code_location_origin(), self.repository.name)
        self.progress = progress
        self.pool_wait_s = pool_wait_s
        self.cursors: dict[str, str | None] = {}
        # Why each sensor's last tick asked for no run (its skip reason), as the daemon shows it on the tick.
        self.skipped: dict[str, str] = {}

    def tick_schedule(self, name: str, when: datetime) -> list[LaunchedRun]:
        """Evaluate schedule ``name`` as of ``when`` and execute the runs it requests."""
        schedule = self.defs.resolve_schedule_def(name)
        with dg.build_schedule_context(instance=self.instance, scheduled_execution_time=when,
                                       repository_def=self.repository) as context:
            requests = schedule(context)
        requests = requests if isinstance(requests, list) else [requests] if requests else []
        requests = [request for request in requests or [] if isinstance(request, dg.RunRequest)]
        # As the scheduler daemon does: the tick is the scheduled time's, and names the runs it started.
        tick = self._start_tick(name, InstigatorType.SCHEDULE, when.timestamp())
        origin = {"dagster/schedule_name": name, "dagster/scheduled_execution_time": when.isoformat(),
                  TICK_ID_TAG: str(tick.tick_id)}
        with self._ticking(tick):
            launched = [self.launch(f"schedule {name}", request, schedule.job_name, origin) for request in requests]
        self._finish_tick(tick, launched, "no run requested")
        return launched

    def _start_tick(self, name: str, kind: InstigatorType, timestamp: float) -> InstigatorTick:
        """Record an evaluation of schedule or sensor ``name`` where the UI's tick history finds it."""
        origin = self.origin.get_instigator_origin(name)
        selector = InstigatorSelector(location_name=self.origin.code_location_origin.location_name,
                                      repository_name=self.origin.repository_name, name=name)
        return self.instance.create_tick(TickData(
            instigator_origin_id=origin.get_id(), instigator_name=name, instigator_type=kind,
            status=TickStatus.STARTED, timestamp=timestamp, selector_id=selector.get_id()))

    @contextlib.contextmanager
    def _ticking(self, tick: InstigatorTick) -> Iterator[None]:
        """Launching the runs of ``tick``: a tick cut short (Ctrl-C, an error) is recorded as failed, not left
        started (the scheduler daemon would take a started tick at the same time for one to resume)."""
        try:
            yield
        except BaseException:
            error = serializable_error_info_from_exc_info(sys.exc_info())
            self.instance.update_tick(tick.with_status(TickStatus.FAILURE, error=error))
            raise

    def _finish_tick(self, tick: InstigatorTick, launched: list[LaunchedRun], skip_reason: str) -> None:
        """The tick succeeded with the runs it started, or was skipped for ``skip_reason``."""
        for run in launched:
            tick = tick.with_run_info(run.result.run_id, run.tags.get("dagster/run_key"))
        self.instance.update_tick(tick.with_status(TickStatus.SUCCESS) if launched else
                                  tick.with_status(TickStatus.SKIPPED).with_reason(skip_reason or None))

    def tick_sensor(self, name: str) -> list[LaunchedRun]:
        """Evaluate sensor ``name`` with its cursor, apply its partition requests, execute the runs it requests."""
        sensor = self.defs.resolve_sensor_def(name)
        # Opened as a context manager: resources with nested resources are set up and torn down around the tick.
        with dg.build_sensor_context(instance=self.instance, cursor=self.cursors.get(name),
                                     resources=self.defs.resources, repository_def=self.repository,
                                     sensor_name=name) as context:
            data = sensor(context)
        if not isinstance(data, dg.SensorResult):
            raise TypeError(f"sensor {name} must return a SensorResult, got {type(data).__name__}")
        self.cursors[name] = data.cursor if data.cursor is not None else self.cursors.get(name)
        self.skipped[name] = data.skip_reason.skip_message or "" if data.skip_reason else ""
        tick = self._start_tick(name, InstigatorType.SENSOR, time.time())
        for request in data.dynamic_partitions_requests or []:
            if isinstance(request, dg.AddDynamicPartitionsRequest):
                self.instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
        launched = []
        with self._ticking(tick):
            for request in data.run_requests or []:
                # As the daemon does: a run key a sensor already used is not run again.
                if request.run_key and self.instance.get_runs(filters=dg.RunsFilter(tags={
                        "dagster/sensor_name": name, "dagster/run_key": request.run_key}), limit=1):
                    self.progress(f"    sensor {name}: run key {request.run_key} already ran; skipped")
                    continue
                launched.append(self.launch(f"sensor {name}", request, request.job_name or sensor.job_name,
                                            {"dagster/sensor_name": name, TICK_ID_TAG: str(tick.tick_id)}))
        self._finish_tick(tick, launched, self.skipped[name])
        return launched

    def launch(self, origin: str, request: dg.RunRequest, job_name: str, origin_tags: dict) -> LaunchedRun:
        """Execute one requested run of ``job_name`` on the instance, tagged with who asked for it."""
        tags = {**request.tags, **origin_tags, **process_tags()}
        if request.run_key:
            tags["dagster/run_key"] = request.run_key
        target = f"{job_name}" + (f" [{request.partition_key}]" if request.partition_key else "")
        self.progress(f"    {origin} -> {target}")
        wait_for_pool(self.instance, self.pool_wait_s, self.progress)
        started = time.perf_counter()
        result = self._execute(job_name, request.partition_key, tags, {**(request.run_config or {}), **_QUIET})
        seconds = time.perf_counter() - started
        self.progress(f"      run {result.run_id[:8]} {'succeeded' if result.success else 'FAILED'} in {seconds:.0f} s")
        run = self.instance.get_run_by_id(result.run_id)
        if run is not None and run.tags.get(FAILURE_REASON_TAG) == INTERRUPTED:
            # Dagster turns Ctrl-C or SIGTERM during a run into a failed run and returns: the command stops too.
            raise KeyboardInterrupt
        return LaunchedRun(origin, job_name, request.partition_key, result, seconds, tags)

    def _execute(self, job_name: str, partition_key: str | None, tags: dict[str, str],
                 run_config: dict) -> ExecutionResult:
        """Create the run as the daemon does, with the job's remote origin in the code location, and execute it
        here; ``JobDefinition.execute_in_process`` would create it without one, and the UI would know it only in
        the Runs list (no job page, timeline, or schedule history)."""
        job = self.defs.resolve_job_def(job_name)
        run = self.instance.create_run_for_job(
            job, run_config=run_config, remote_job_origin=self.origin.get_job_origin(job_name),
            # The partition's tags, as execute_in_process gives them.
            tags=merge_run_tags(job, partition_key, tags, None, self.instance, run_config))
        return execute_run(InMemoryJob(job), run, self.instance, raise_on_error=False)


def revalue(settings: Settings) -> int:
    """Run valuation_job: value current listings with the champion, list deals, publish; returns rows valued."""
    automation = Automation(settings, progress=lambda _: None)
    run = automation.launch("carprice", dg.RunRequest(), "valuation_job", {})
    if not run.result.success:
        raise PipelineError(f"valuation run {run.result.run_id} failed: {first_failure(run.result)}")
    return int(materialization_metadata(run.result, "listing_valuations")["dagster/row_count"])
