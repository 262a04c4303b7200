"""The deployed product: ``dagster dev`` (webserver and daemon) on a Dagster instance stored in
PostgreSQL, driven through the daemon's run queue, GraphQL and the UI in headless Chromium.

What it serves is a team's code location: one source, an API shaped unlike the sample (the
second profile: numeric ids, envelopes, a custom auth header, ``Link`` pages), declared in one
``defs.yaml`` as a ``RestSource`` component, its URL and token from the environment.

Screenshots go to test-artifacts/ui/.
"""

import shutil
import textwrap
import time
from datetime import date
from pathlib import Path

import pytest
import yaml
from dagster import AssetKey, DagsterEventType, DagsterInstance, DagsterRunStatus
from dagster._core.instance.ref import InstanceRef
from dagster_graphql import DagsterGraphQLClient

from pipelines.sample_api import SampleApiConfig, World
from pipelines.sync.resources import WarehouseResource
from pipelines_tests.helpers import ROOT, DagsterDev, SampleServer, dg_project, postgres_database, stored, truth

ARTIFACTS = ROOT / "test-artifacts" / "ui"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
ASSETS = ["watchlist", "retry_queue", "job_set", "synced_resources", "dead_letter"]
SOURCE = "shop"
TOKEN = "tok-ui"
PAST_DAY = {"pipelines/sync_past_day": "true"}  # the operator's opt-in to sync a day before the newest


def key(asset: str) -> AssetKey:
    return AssetKey([SOURCE, asset])


def team_project(root: Path) -> Path:
    """The team's dg project: examples/sample_shop.yaml as a component, pointed at SHOP_URL."""
    declaration = (ROOT / "examples" / "sample_shop.yaml").read_text()
    declaration = declaration.replace(
        "sample: {profile: shop, resources: 30000, change_rate: 0.2, seed: 7}", "base_url_env: SHOP_URL"
    )
    assert "base_url_env: SHOP_URL" in declaration
    defs_yaml = "type: pipelines.components.RestSource\nattributes:\n" + textwrap.indent(declaration, "  ")
    return dg_project(root, "ui_team_sources", {SOURCE: defs_yaml})


BACKFILL = """
mutation Backfill($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on Error { message }
  }
}"""
BACKFILL_STATUS = """
query Status($id: String!) {
  partitionBackfillOrError(backfillId: $id) { __typename ... on PartitionBackfill { status } ... on Error { message } }
}"""


@pytest.fixture(scope="module")
def deployed(tmp_path_factory):
    """dagster dev on a PostgreSQL instance, a PostgreSQL warehouse and the sample API on loopback
    (``(dev, instance, warehouse_url, api)``)."""
    tmp = tmp_path_factory.mktemp("deployed")
    server = SampleServer(resources=400, day=1, token=TOKEN)
    project = team_project(tmp)
    with postgres_database("pipelines_dagster") as instance_url, postgres_database() as warehouse_url:
        home = tmp / "home"
        home.mkdir()
        config = yaml.safe_load((ROOT / "dagster.yaml").read_text())
        config["storage"] = {"postgres": {"postgres_url": instance_url.replace("postgresql+psycopg2", "postgresql")}}
        (home / "dagster.yaml").write_text(yaml.safe_dump(config))
        env = {
            "SHOP_URL": server.url,
            "SHOP_ACCESS_TOKEN": TOKEN,
            "WAREHOUSE_URL": warehouse_url,
            "SYNC_BATCHES_PER_STEP": "2",
            "PYTHONPATH": str(tmp),
        }
        target = ["-m", f"{project.name}.definitions", "-d", str(tmp)]
        dev = DagsterDev(home, env, tmp / "dagster-dev.log", target=target, cwd=tmp)
        try:
            dev.wait_for_assets()
            instance = DagsterInstance.from_ref(InstanceRef.from_dir(str(home)))
            yield dev, instance, warehouse_url, server
            instance.dispose()
        finally:
            dev.stop()
            server.stop()
            shutil.copy(tmp / "dagster-dev.log", _artifacts() / "dagster-dev.log")


def _artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


def wait_for_run(instance, run_id: str, timeout: float = 300) -> DagsterRunStatus:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = instance.get_run_by_id(run_id).status
        if status in (DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED):
            return status
        time.sleep(1)
    raise AssertionError(f"run {run_id} still {status} after {timeout}s")


def test_a_partition_runs_through_the_daemons_queue_on_a_postgres_instance(deployed):
    dev, instance, warehouse_url, _ = deployed
    assert type(instance.run_storage).__name__ == "PostgresRunStorage"
    client = DagsterGraphQLClient("127.0.0.1", port_number=dev.port)
    run_id = client.submit_job_execution(f"{SOURCE}_daily_sync_job", tags={"dagster/partition": "2026-01-01"})
    assert wait_for_run(instance, run_id) is DagsterRunStatus.SUCCESS
    run = instance.get_run_by_id(run_id)  # read back from PostgreSQL
    assert run.tags["dagster/partition"] == "2026-01-01" and run.job_name == f"{SOURCE}_daily_sync_job"
    # queued by the QueuedRunCoordinator, then launched by the daemon
    for event in (DagsterEventType.RUN_ENQUEUED, DagsterEventType.RUN_STARTING, DagsterEventType.RUN_SUCCESS):
        assert instance.all_logs(run_id, of_type=event), f"no {event} in the run's log"
    event = instance.get_latest_materialization_event(key("synced_resources"))
    assert event.asset_materialization.metadata["sub_jobs"].value == 400
    # in the source's own namespace, the API's truth: numeric ids, fingerprints of updated_at
    world = World(SampleApiConfig(resources=400))
    rows = stored(WarehouseResource(url=warehouse_url).store(SOURCE))
    assert {rid: fp for rid, (status, fp) in rows.items() if status == "live"} == truth(SOURCE, world, 1)


def test_the_ui_shows_the_lineage_and_launches_a_partition(deployed):
    from playwright.sync_api import sync_playwright

    dev, instance, warehouse_url, _ = deployed
    assert Path(CHROMIUM).exists(), "the UI test needs Debian's chromium (apt-get install chromium)"
    out = _artifacts()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        page.goto(f"{dev.url}/asset-groups")
        skip = page.get_by_role("button", name="Skip")  # Dagster's first-visit community dialog
        skip.wait_for(timeout=60_000)
        skip.click()
        for name in ASSETS:
            page.get_by_role("button", name=name).first.wait_for(timeout=60_000)
        edges = page.locator('svg path[stroke="var(--color-lineage-edge)"]')
        edges.first.wait_for(state="attached")  # SVG paths, which Playwright calls hidden
        assert edges.count() == 4  # watchlist, retry_queue -> job_set -> synced_resources -> dead_letter
        page.screenshot(path=str(out / "1-asset-graph.png"))

        before = {r.run_id for r in instance.get_runs()}
        page.get_by_role("button", name="Materialize all…").click()
        dialog = page.get_by_role("dialog")
        dialog.get_by_role("button", name="Latest", exact=True).click()
        page.screenshot(path=str(out / "2-launch-dialog.png"))
        launch = dialog.get_by_role("button", name="Launch 1 run")
        launch.wait_for(timeout=30_000)
        launch.click()

        deadline = time.monotonic() + 60
        while not (new := [r for r in instance.get_runs() if r.run_id not in before]):
            assert time.monotonic() < deadline, "the UI launched no run"
            time.sleep(0.5)
        (run,) = new
        assert wait_for_run(instance, run.run_id) is DagsterRunStatus.SUCCESS
        page.goto(f"{dev.url}/runs/{run.run_id}")
        page.get_by_text("Success").first.wait_for(timeout=60_000)
        page.screenshot(path=str(out / "3-run-succeeded.png"))
        browser.close()
    assert run.tags.get("dagster/partition")  # a partition was launched, from the UI
    assert set(run.asset_selection or ()) >= {key(a) for a in ASSETS}


def test_a_two_day_backfill_through_graphql(deployed):
    dev, instance, warehouse_url, _ = deployed
    days = ["2026-01-02", "2026-01-03"]
    params = {
        "partitionNames": days,
        "assetSelection": [{"path": key(a).path} for a in ASSETS],
        "fromFailure": False,
        # days before the newest synced (the UI test's "Latest"): a backfill opts in, or is refused
        "tags": [{"key": k, "value": v} for k, v in PAST_DAY.items()],
    }
    reply = dev.graphql(BACKFILL, {"params": params})["data"]["launchPartitionBackfill"]
    assert reply["__typename"] == "LaunchBackfillSuccess", reply
    deadline = time.monotonic() + 420
    while True:
        status = dev.graphql(BACKFILL_STATUS, {"id": reply["backfillId"]})["data"]["partitionBackfillOrError"]["status"]
        if status not in ("REQUESTED", "CANCELING", "FAILING"):
            break
        assert time.monotonic() < deadline, f"backfill still {status}"
        time.sleep(2)
    assert status in ("COMPLETED", "COMPLETED_SUCCESS"), status
    materialized = instance.get_materialized_partitions(key("synced_resources"))
    assert set(days) <= materialized


TERMINATE = """
mutation Terminate($runId: String!) {
  terminateRun(runId: $runId) {
    __typename
    ... on TerminateRunFailure { message }
    ... on PythonError { message }
  }
}"""


def test_terminate_in_the_ui_stops_a_syncing_run_within_seconds(deployed):
    """The UI's Terminate (GraphQL ``terminateRun``) on a run that is calling the API: it stops
    within seconds, calls nothing more, and the next run of the day finishes it."""
    dev, instance, warehouse_url, api = deployed
    day = "2026-01-20"
    client = DagsterGraphQLClient("127.0.0.1", port_number=dev.port)
    api.configure(day=20, latency_ms=500)  # most of the 400 changed since day 1: ten seconds of details
    try:
        api.reset()
        run_id = client.submit_job_execution(f"{SOURCE}_daily_sync_job", tags={"dagster/partition": day, **PAST_DAY})
        deadline = time.monotonic() + 120
        while api.stats()["detail"] < 20:  # the sync step is calling
            assert instance.get_run_by_id(run_id).status not in (DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE)
            assert time.monotonic() < deadline, "the run never got to its detail calls"
            time.sleep(0.2)
        reply = dev.graphql(TERMINATE, {"runId": run_id})["data"]["terminateRun"]
        assert reply["__typename"] == "TerminateRunSuccess", reply
        asked = time.monotonic()
        status = wait_for_run(instance, run_id, timeout=60)
        stopped_in = time.monotonic() - asked
        sent = api.stats()["billable"]
        time.sleep(2)
        assert api.stats()["billable"] == sent  # nothing of it calls on
    finally:
        api.configure(latency_ms=0)
    print(f"terminateRun: {status.value} in {stopped_in:.1f}s, {sent} calls sent")
    assert status is DagsterRunStatus.CANCELED and stopped_in < 10
    assert sent < 400  # stopped mid-way through the details

    again = client.submit_job_execution(f"{SOURCE}_daily_sync_job", tags={"dagster/partition": day, **PAST_DAY})
    assert wait_for_run(instance, again) is DagsterRunStatus.SUCCESS
    store = WarehouseResource(url=warehouse_url).store(SOURCE)
    conservation = store.reports.conservation(date.fromisoformat(day))
    assert conservation["sub_jobs"] == 400 and conservation["without_outcome"] == 0
    assert conservation["outcomes_without_sub_job"] == 0
    api.configure(day=1)
