"""The code location loads, validates with Dagster's own CLI, and shows the lineage it should."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

from dagster import AssetKey

from pipelines.definitions import defs as code_location
from pipelines_tests.helpers import source_env, source_file

ROOT = Path(__file__).resolve().parents[1]
defs = code_location()  # loaded as Dagster loads it (importing the module loads nothing)


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


def assert_lineage(definitions, prefix: list[str]) -> None:
    graph = definitions.resolve_asset_graph()

    def key(name: str) -> AssetKey:
        return AssetKey([*prefix, name])

    names = ("watchlist", "retry_queue", "job_set", "synced_resources", "dead_letter")
    assert set(graph.get_all_asset_keys()) == {key(n) for n in names}
    # where a day's sub-jobs come from: the watchlist and the retry queue (which carries replays)
    assert graph.get(key("job_set")).parent_keys == {key("watchlist"), key("retry_queue")}
    assert graph.get(key("synced_resources")).parent_keys == {key("job_set")}
    assert graph.get(key("dead_letter")).parent_keys == {key("synced_resources")}
    checks = {(tuple(k.asset_key.path), k.name) for k in graph.asset_check_keys}
    assert checks == {
        (tuple(key(a).path), c)
        for a, c in (
            ("watchlist", "listing_complete"),
            ("synced_resources", "conservation"),
            ("dead_letter", "dead_letter_rate"),
            ("synced_resources", "synced_share"),
            ("synced_resources", "spend_ceiling"),
        )
    }
    for k in graph.get_all_asset_keys():
        assert graph.get(k).partitions_def.get_partition_keys()[0] == "2026-01-01"


def test_the_shipped_sample_is_a_component_under_its_name():
    """With nothing configured, the code location is the components under pipelines/defs/: the
    embedded sample's, its assets under ``sample/``."""
    assert_lineage(defs, ["sample"])
    job = defs.resolve_job_def("sample_daily_sync_job")
    assert {n.name for n in job.graph.node_defs} >= {f"sample__{a}" for a in ("watchlist", "job_set", "dead_letter")}
    assert job.partitions_def is not None
    assert job.tags.get("source") == "sample"
    assert defs.resolve_job_def("sample_replay_dead_letters") is not None


def test_a_source_configured_by_environment_keeps_its_names(monkeypatch):
    """SOURCE_DECLARATION: the one source, under the names a single-source deployment always had,
    so it upgrades without renamed assets."""
    from pipelines.definitions import build_defs
    from pipelines.settings import Settings

    legacy = build_defs(Settings(source_declaration=str(source_file("https://api.example"))))
    assert_lineage(legacy, [])
    assert legacy.resolve_job_def("daily_sync_job") is not None
    assert legacy.resolve_job_def("replay_dead_letters") is not None
    assert legacy.resolve_schedule_def("daily_sync_schedule") is not None


def test_schedule_and_sensors_are_declared_running():
    from dagster import DefaultScheduleStatus, DefaultSensorStatus

    assert defs.resolve_schedule_def("sample_daily_sync_schedule").default_status is DefaultScheduleStatus.RUNNING
    for name in ("sample_completion_sensor", "sample_run_failure_alert_sensor"):
        assert defs.resolve_sensor_def(name).default_status is DefaultSensorStatus.RUNNING


def test_no_secret_is_a_value_of_the_sources_resource(monkeypatch):
    """The token is read from the variable the declaration names when a run starts; the shared
    rate's Redis URL (which may carry a password) reaches Dagster as an EnvVar, shown by name."""
    monkeypatch.setenv("SOURCE_API_TOKEN", "tok-abc")
    monkeypatch.setenv("SOURCE_RATE_LIMITER_URL", "redis://:pw-redis-secret@127.0.0.1:6379/0")
    from pipelines.definitions import single_source
    from pipelines.settings import Settings

    source_api = single_source(Settings(source_declaration=str(ROOT / "docker/source.yaml")))
    shown = repr(source_api._get_non_default_public_field_values())  # noqa: SLF001
    assert "tok-abc" not in shown and "pw-redis-secret" not in shown and "SOURCE_RATE_LIMITER_URL" in shown


def test_the_sample_api_and_the_benchmark_are_not_imported_by_the_code_location():
    """Loading the code location for a real API imports neither the demo's API nor the benchmark."""
    code = (
        "import sys; from pipelines.definitions import defs; defs(); "
        "print(sorted(m for m in sys.modules if m.startswith(('pipelines.sample_api', 'pipelines.bench'))))"
    )
    env = {**os.environ, **source_env("https://api.example")}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_the_installed_package_loads_its_components_without_the_repository(tmp_path):
    """As the Docker image has it: the package installed, no pyproject.toml beside it."""
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(target),
            ".",
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=300,
    )
    ignored = [line for line in (ROOT / ".dockerignore").read_text().splitlines() if line.startswith("pipelines/")]
    assert ignored == ["pipelines/sample_api", "pipelines/bench"]  # the image leaves them out, as here
    for package in ignored:
        shutil.rmtree(target / package)
    # a checkout's editable install would still find them: blocked, as absent as in the image
    code = (
        "import sys; sys.modules.update(dict.fromkeys(['pipelines.sample_api', 'pipelines.bench']))\n"
        "from pipelines.definitions import defs; print(sorted(j.name for j in defs().resolve_all_job_defs()))\n"
        "from pipelines.sync.resources import declared_source, sample_sender\n"
        "try:\n    sample_sender(declared_source('pipelines/defs/sample/defs.yaml').declaration(), 1)\n"
        "except Exception as exc:\n    print(type(exc).__name__, exc)"
    )
    env = {**os.environ, "PYTHONPATH": str(target)}
    out = subprocess.run([sys.executable, "-c", code], cwd=target, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "sample_daily_sync_job" in out.stdout and "sample_replay_dead_letters" in out.stdout
    assert "Failure source 'sample' declares client.sample" in out.stdout and "pipelines[sample]" in out.stdout
