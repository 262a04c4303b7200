"""The code location loads, validates with Dagster's own CLI, and shows the lineage it should."""

import os
import subprocess
import sys
from pathlib import Path

from dagster import AssetKey

from pipelines.definitions import defs

ROOT = Path(__file__).resolve().parents[1]


def test_dagster_definitions_validate_on_the_workspace(tmp_path):
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path)}
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "dagster"), "definitions", "validate", "-w", "workspace.yaml"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Validation successful" in proc.stdout + proc.stderr


def test_assets_partitions_and_lineage():
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert keys == {"watchlist", "retry_queue", "job_set", "synced_resources", "dead_letter"}
    # where a day's sub-jobs come from: the watchlist and the retry queue (which carries replays)
    assert graph.get(AssetKey("job_set")).parent_keys == {AssetKey("watchlist"), AssetKey("retry_queue")}
    assert graph.get(AssetKey("synced_resources")).parent_keys == {AssetKey("job_set")}
    assert graph.get(AssetKey("dead_letter")).parent_keys == {AssetKey("synced_resources")}
    checks = {k.name for k in graph.asset_check_keys}
    assert checks == {"conservation", "dead_letter_rate", "synced_share"}
    for key in graph.get_all_asset_keys():
        assert graph.get(key).partitions_def.get_partition_keys()[0] == "2026-01-01"


def test_the_daily_job_selects_the_whole_sync():
    job = defs.resolve_job_def("daily_sync_job")
    assert {n.name for n in job.graph.node_defs} >= {
        "watchlist",
        "retry_queue",
        "job_set",
        "synced_resources",
        "dead_letter",
    }
    assert job.partitions_def is not None
    assert defs.resolve_job_def("replay_dead_letters") is not None


def test_schedule_and_sensors_are_declared_running():
    from dagster import DefaultScheduleStatus, DefaultSensorStatus

    assert defs.resolve_schedule_def("daily_sync_schedule").default_status is DefaultScheduleStatus.RUNNING
    for name in ("completion_sensor", "run_failure_alert_sensor"):
        assert defs.resolve_sensor_def(name).default_status is DefaultSensorStatus.RUNNING


def test_the_token_is_an_env_var_never_a_value(monkeypatch):
    monkeypatch.setenv("SOURCE_API_TOKEN", "tok-abc")
    from pipelines.definitions import build_resources
    from pipelines.settings import Settings

    source_api = build_resources(Settings())["source_api"]
    assert "tok-abc" not in repr(source_api._get_non_default_public_field_values())  # noqa: SLF001


def test_the_sample_api_and_the_benchmark_are_not_imported_by_the_code_location():
    """Loading the code location for a real API imports neither the demo's API nor the benchmark."""
    code = (
        "import sys; import pipelines.definitions; "
        "print(sorted(m for m in sys.modules if m.startswith(('pipelines.sample_api', 'pipelines.bench'))))"
    )
    env = {**os.environ, "SOURCE_API_URL": "https://api.example"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "[]", out.stdout
