"""SYNC_EXECUTOR: the executors are configuration. The Celery workers' app agrees with the executor,
the warehouse IO manager carries values between steps, and the Kubernetes path (docker/k8s/) is
validated as far as it can be without a cluster: by Dagster's own schemas and our settings."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib

import pytest
import yaml
from dagster import AssetKey, build_input_context, build_output_context
from dagster._config import validate_config
from dagster_k8s import K8sRunLauncher, k8s_job_executor

from pipelines.settings import Settings
from pipelines.source.declaration_file import load_declaration
from pipelines.sync.executors import celery_config, executor_for
from pipelines.sync.io_manager import WarehouseIOManager
from pipelines_tests.helpers import ROOT, SETTING_NAMES, config_errors

K8S = ROOT / "docker" / "k8s"


@pytest.mark.parametrize(("name", "executor"), [("in_process", "in_process"), ("multiprocess", "multiprocess"),
                                                ("celery", "celery"), ("k8s", "k8s")])  # fmt: skip
def test_the_code_location_loads_with_each_executor(name, executor, tmp_path):
    probe = "from pipelines.definitions import defs; print(defs().resolve_job_def('sample_daily_sync_job').executor_def.name)"
    env = {"SYNC_EXECUTOR": name, "WAREHOUSE_URL": f"sqlite:///{tmp_path / 'wh.db'}", "PATH": ""}
    proc = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == executor


def test_celery_steps_are_acknowledged_when_done_so_a_dead_worker_gives_them_back():
    config = celery_config(Settings(sync_celery_broker_url="redis://h:6379/3", sync_celery_visibility_timeout=900))
    assert (config["broker"], config["backend"]) == ("redis://h:6379/3", "redis://h:6379/3")
    source = config["config_source"]
    assert source["task_acks_late"] is True and source["task_reject_on_worker_lost"] is True
    assert source["worker_prefetch_multiplier"] == 1
    transport = source["broker_transport_options"]
    assert transport["visibility_timeout"] == 900
    assert transport["unacked_restore_interval"] * transport["unacked_restore_throttle"] <= 10
    assert transport["max_retries"] == 3  # dagster-celery's own transport defaults are kept
    # RabbitMQ as broker: results over its RPC backend unless one is named
    assert celery_config(Settings(sync_celery_broker_url="amqp://guest@h//"))["backend"] == "rpc://"
    # what the executor sends is valid for dagster-celery's own schema
    from dagster_celery import celery_executor

    checked = validate_config(celery_executor.config_schema.config_type, config)
    assert checked.success, config_errors(checked)


def test_the_workers_app_is_the_executors_app(monkeypatch):
    """Workers build their Celery app from the same settings: same broker, acks and timeout."""
    env = {"SYNC_CELERY_BROKER_URL": "redis://127.0.0.1:6379/13", "SYNC_CELERY_VISIBILITY_TIMEOUT": "120"}
    probe = (
        "import json; from pipelines.workers import app, execute_plan; c = app.conf; "
        "print(json.dumps([c.broker_url, c.result_backend, c.task_acks_late, c.task_reject_on_worker_lost, "
        "c.broker_transport_options['visibility_timeout'], execute_plan.name, c.task_default_queue]))"
    )
    proc = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    broker, backend, acks_late, reject, timeout, task, queue = json.loads(proc.stdout.strip().splitlines()[-1])
    assert broker == backend == "redis://127.0.0.1:6379/13"
    assert (acks_late, reject, timeout) == (True, True, 120)
    assert (task, queue) == ("execute_plan", "dagster")  # the names dagster-celery submits to


def test_step_values_go_through_the_warehouse(sqlite_warehouse_url):
    manager = WarehouseIOManager(url=sqlite_warehouse_url)
    out = build_output_context(step_key="synced_resources.sync_batches[b00000_00001]", name="result",
                               run_id="r1", mapping_key="b00000_00001")  # fmt: skip
    manager.handle_output(out, {"batches": 2, "calls": 400})
    back = build_input_context(upstream_output=out)
    assert manager.load_input(back) == {"batches": 2, "calls": 400}
    # an asset's value is keyed by asset and partition: any later run reads it
    asset_out = build_output_context(asset_key=AssetKey("synced_resources"), name="result", run_id="r1")
    manager.handle_output(asset_out, {"cost_usd": 1.5})
    assert manager.load_input(
        build_input_context(upstream_output=asset_out, asset_key=AssetKey("synced_resources"))
    ) == {"cost_usd": 1.5}
    with pytest.raises(TypeError, match="JSON values only"):
        manager.handle_output(out, object())
    with pytest.raises(KeyError, match="was the upstream step run"):
        missing = build_output_context(step_key="x", name="result", run_id="r2")
        manager.load_input(build_input_context(upstream_output=missing))


@pytest.fixture(scope="module")
def values() -> dict:
    return yaml.safe_load((K8S / "values.yaml").read_text())


def test_helm_values_deploy_this_code_location(values):
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    module = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["dagster"]["module_name"]
    assert deployment["dagsterApiGrpcArgs"] == ["-m", module]
    assert deployment["includeConfigInLaunchedRuns"]["enabled"] is True  # runs and steps get its env
    assert re.fullmatch(r"\d+\.\d+\.\d+", str(deployment["image"]["tag"]))
    assert deployment["image"]["pullPolicy"] in {"Always", "IfNotPresent", "Never"}
    # every variable it sets is a setting of ours, with a value our settings accept
    env = {item["name"]: item["value"] for item in deployment["env"]}
    assert set(env) <= SETTING_NAMES, set(env) - SETTING_NAMES
    settings = Settings(**{k.lower(): v for k, v in env.items()})
    assert settings.sync_executor == "k8s"
    secret_names = [line.split("=")[0] for line in (K8S / "pipelines.env.example").read_text().splitlines()
                    if line and not line.startswith("#")]  # fmt: skip
    image_source = load_declaration(ROOT / "docker/source.yaml")  # the API the image syncs, and what it reads
    assert set(secret_names) <= SETTING_NAMES | image_source.variables() and "WAREHOUSE_URL" in secret_names
    assert image_source.variables() <= set(secret_names)
    assert [s["name"] for s in deployment["envSecrets"]] == ["pipelines-env"]


def test_helm_values_are_valid_for_the_k8s_launcher_and_executor(values):
    launcher = values["runLauncher"]
    assert launcher["type"] == "K8sRunLauncher"
    # the chart renders these keys into the instance's run_launcher config, snake_cased
    config = {_snake(k): v for k, v in launcher["config"]["k8sRunLauncher"].items()}
    config["env_secrets"] = [s["name"] for s in config.get("env_secrets", [])]
    config["run_k8s_config"] = {_snake(k): v for k, v in config.get("run_k8s_config", {}).items()}
    config["instance_config_map"] = "dagster-instance"  # set by the chart itself
    checked = validate_config(K8sRunLauncher.config_type(), config)
    assert checked.success, config_errors(checked)
    # the step executor our settings build for SYNC_EXECUTOR=k8s
    env = {i["name"]: i["value"] for i in values["dagster-user-deployments"]["deployments"][0]["env"]}
    executor = executor_for(Settings(**{k.lower(): v for k, v in env.items()}))
    assert executor.name == "k8s"
    checked = validate_config(
        k8s_job_executor.config_schema.config_type, {"max_concurrent": int(env["SYNC_K8S_MAX_CONCURRENT"])}
    )
    assert checked.success, config_errors(checked)


def test_helm_instance_policies_match_the_docker_instance(values):
    """The same run queue, retries and monitoring on Kubernetes as in docker/dagster.yaml."""
    docker = yaml.safe_load((ROOT / "docker" / "dagster.yaml").read_text())
    daemon = values["dagsterDaemon"]
    queued = daemon["runCoordinator"]["config"]["queuedRunCoordinator"]
    assert queued["maxConcurrentRuns"] == docker["concurrency"]["runs"]["max_concurrent_runs"]
    assert queued["tagConcurrencyLimits"] == docker["concurrency"]["runs"]["tag_concurrency_limits"]
    retries, monitoring = daemon["runRetries"], daemon["runMonitoring"]
    assert retries["maxRetries"] == docker["run_retries"]["max_retries"]
    assert retries["retryOnAssetOrOpFailure"] is docker["run_retries"]["retry_on_asset_or_op_failure"]
    assert monitoring["maxResumeRunAttempts"] == docker["run_monitoring"]["max_resume_run_attempts"]
    assert values["postgresql"]["enabled"] is False and values["global"]["postgresqlSecretName"]


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def test_celery_urls_with_passwords_reach_dagster_by_name_only(monkeypatch):
    """What the executor is configured with holds the variables' names, not their values."""
    from dagster import job, op
    from dagster._serdes import serialize_value

    from pipelines.sync.executors import _urls_by_name

    monkeypatch.setenv("SYNC_EXECUTOR", "celery")
    monkeypatch.setenv("SYNC_CELERY_BROKER_URL", "redis://default:broker-SECRET-91@127.0.0.1:6379/1")
    settings = Settings()
    configured = _urls_by_name(celery_config(settings), settings)
    assert configured["broker"] == configured["backend"] == {"env": "SYNC_CELERY_BROKER_URL"}
    checked = validate_config(__import__("dagster_celery").celery_executor.config_schema.config_type, configured)
    assert checked.success, config_errors(checked)

    @op
    def noop() -> None:
        pass

    @job(executor_def=executor_for(settings))
    def probe_job():
        noop()

    assert "broker-SECRET-91" not in serialize_value(probe_job.get_job_snapshot())
