"""Runs that `carprice run` executes in its own process belong to the project's code location, as the daemon's do:
the UI lists them under their job (and in the Overview timeline, which groups runs by their repository), and each
evaluation of the schedule and the sensors is a tick in their history."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, time

import pytest
from dagster._core.remote_origin import InProcessCodeLocationOrigin
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._core.workspace.load_target import InProcessWorkspaceLoadTarget
from dagster_graphql.test.utils import execute_dagster_graphql

from carprice.config import PROJECT_DIR, market_date
from carprice.runs.launcher import Automation

pytestmark = pytest.mark.integration

REPO = {"repositoryLocationName": "carprice", "repositoryName": "__repository__"}
QUERY = """
query ($repo: String!, $location: String!, $runIds: [String!]) {
  crawl: pipelineOrError(params: {repositoryLocationName: $location, repositoryName: $repo, pipelineName: "crawl_job"})
    { ... on Pipeline { runs { runId } } }
  batch: pipelineOrError(params: {repositoryLocationName: $location, repositoryName: $repo, pipelineName: "batch_job"})
    { ... on Pipeline { runs { runId } } }
  scheduleOrError(scheduleSelector: {repositoryLocationName: $location, repositoryName: $repo,
                                     scheduleName: "crawl_automarkt"}) {
    ... on Schedule { scheduleState { ticks(limit: 5) { status runIds timestamp } runs { runId } } }
  }
  landing: sensorOrError(sensorSelector: {repositoryLocationName: $location, repositoryName: $repo,
                                          sensorName: "landing_sensor"}) {
    ... on Sensor { sensorState { ticks(limit: 5) { status runIds } } }
  }
  retraining: sensorOrError(sensorSelector: {repositoryLocationName: $location, repositoryName: $repo,
                                             sensorName: "retraining_sensor"}) {
    ... on Sensor { sensorState { ticks(limit: 5) { status skipReason } } }
  }
  runsOrError(filter: {runIds: $runIds}) {
    ... on Runs { results { runId repositoryOrigin { repositoryLocationName repositoryName } } }
  }
}
"""


def test_runs_of_carprice_run_are_listed_under_their_job_schedule_and_sensors(settings, monkeypatch):
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    for var, value in settings.to_env().items():  # the code location below reads them, as under `carprice ui`
        monkeypatch.setenv(var, value)
    automation = Automation(settings, progress=lambda _: None)
    assert automation.tick_sensor("retraining_sensor") == []
    when = datetime.combine(market_date(settings.market_day), time(6, tzinfo=UTC))
    (crawl,) = automation.tick_schedule("crawl_automarkt", when)
    (batch,) = automation.tick_sensor("landing_sensor")
    assert crawl.result.success and batch.result.success

    instance = automation.instance
    for launched, job in ((crawl, "crawl_job"), (batch, "batch_job")):
        run = instance.get_run_by_id(launched.result.run_id)
        origin = run.remote_job_origin
        assert origin is not None and (origin.location_name, origin.repository_origin.repository_name,
                                       origin.job_name) == ("carprice", "__repository__", job)
        # Stored with the run's hidden ".dagster/repository" label too, which the job page filters by (below).
        assert run.tags["dagster/code_location"] == "carprice" and run.tags["dagster/tick"]
    assert instance.get_run_by_id(crawl.result.run_id).tags["dagster/schedule_name"] == "crawl_automarkt"

    # What the UI asks, answered by Dagster's GraphQL over the same instance and the project's code location.
    location = InProcessCodeLocationOrigin(LoadableTargetOrigin(
        executable_path=sys.executable, module_name="carprice.definitions", working_directory=str(PROJECT_DIR)),
        location_name="carprice")
    run_ids = [crawl.result.run_id, batch.result.run_id]
    with WorkspaceProcessContext(instance, InProcessWorkspaceLoadTarget(location)) as workspace:
        answer = execute_dagster_graphql(workspace.create_request_context(), QUERY, {
            "repo": REPO["repositoryName"], "location": REPO["repositoryLocationName"], "runIds": run_ids})
    assert not answer.errors, answer.errors
    data = answer.data
    assert [r["runId"] for r in data["crawl"]["runs"]] == [crawl.result.run_id], "the job page's Runs tab"
    assert [r["runId"] for r in data["batch"]["runs"]] == [batch.result.run_id]
    assert {r["runId"]: r["repositoryOrigin"] for r in data["runsOrError"]["results"]} == dict.fromkeys(
        run_ids, REPO), "the Overview timeline groups runs by their repository"
    schedule = data["scheduleOrError"]["scheduleState"]
    assert schedule["ticks"] == [{"status": "SUCCESS", "runIds": [crawl.result.run_id],
                                  "timestamp": when.timestamp()}], "no more 'Schedule has never run'"
    assert [r["runId"] for r in schedule["runs"]] == [crawl.result.run_id]
    assert data["landing"]["sensorState"]["ticks"] == [{"status": "SUCCESS", "runIds": [batch.result.run_id]}]
    (skipped,) = data["retraining"]["sensorState"]["ticks"]
    assert skipped["status"] == "SKIPPED" and skipped["skipReason"].startswith("not due: 0 batches monitored")
