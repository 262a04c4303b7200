"""docker/: no Docker engine runs here, so the files are parsed and validated, and the user-code
server's command from the compose file is started for real and asked whether it serves."""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from dagster._config import validate_config
from dagster._core.instance.config import dagster_instance_config_schema
from dagster_docker import DockerRunLauncher
from dagster_postgres import DagsterPostgresStorage

from pipelines.source.declaration_file import load_declaration
from pipelines_tests.helpers import ROOT, SETTING_NAMES, config_errors, free_port

DOCKER = ROOT / "docker"


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((DOCKER / "docker-compose.yml").read_text())


def test_compose_has_its_services_wired_by_health(compose):
    services = compose["services"]
    assert set(services) == {"postgres", "redis", "user_code", "webserver", "daemon", "celery_worker"}
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    assert services["redis"]["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    assert services["user_code"]["healthcheck"]["test"][1:4] == ["dagster", "api", "grpc-health-check"]
    for name in ("user_code", "webserver", "daemon", "celery_worker"):
        assert services[name]["depends_on"]["postgres"]["condition"] == "service_healthy"
        assert services[name]["depends_on"]["redis"]["condition"] == "service_healthy"
        assert services[name]["environment"]["SOURCE_RATE_LIMITER_URL"] == "redis://redis:6379/0"
        # runs hand their steps to the workers, through the broker on its own Redis database
        assert services[name]["environment"]["SYNC_EXECUTOR"] == "celery"
        assert services[name]["environment"]["SYNC_CELERY_BROKER_URL"] == "redis://redis:6379/1"
    for name in ("webserver", "daemon"):
        assert services[name]["depends_on"]["user_code"]["condition"] == "service_healthy"
        assert "/var/run/docker.sock:/var/run/docker.sock" in services[name]["volumes"]  # the run launcher
    assert services["webserver"]["ports"] == ["127.0.0.1:3000:3000"]


def test_images_are_pinned_and_secrets_come_from_the_env_file(compose):
    for name, service in compose["services"].items():
        image = re.sub(r"\$\{[A-Z_]+:-([^}]+)\}", r"\1", service["image"])  # ${VAR:-default} -> default
        repository, _, tag = image.rpartition(":")
        assert repository and re.fullmatch(r"\d+\.\d+[\w.-]*", tag), f"{name}: {service['image']} is not pinned"
        assert service["env_file"] == ".env", name
        for key, value in (service.get("environment") or {}).items():
            if "PASSWORD" in key or "TOKEN" in key:
                assert str(value).startswith("${"), f"{name}.{key} is hard-coded"
    text = (DOCKER / "docker-compose.yml").read_text()
    assert "POSTGRES_PASSWORD: ${POSTGRES_PASSWORD}" in text
    example = (DOCKER / ".env.example").read_text()
    assert re.search(r"^POSTGRES_PASSWORD=$", example, re.M)  # no default password shipped
    assert (ROOT / ".gitignore").read_text().count("docker/.env") == 1


def test_dockerfile_caches_dependencies_apart_from_the_code():
    lines = [
        ln.strip() for ln in (DOCKER / "Dockerfile").read_text().splitlines() if ln.strip() and not ln.startswith("#")
    ]
    base = next(ln for ln in lines if ln.startswith("FROM "))
    assert re.fullmatch(r"FROM python:3\.11\.\d+-slim-bookworm", base)
    steps = [ln.split()[0] + " " + ln.split()[1] for ln in lines if ln.split()[0] in {"COPY", "RUN"}]
    deps, code = steps.index("COPY pyproject.toml"), steps.index("COPY pipelines")
    install_deps = next(i for i, s in enumerate(steps) if s.startswith("RUN") and i > deps)
    assert deps < install_deps < code  # dependencies installed before the code is copied
    assert "pip install -r deploy.lock" in (DOCKER / "Dockerfile").read_text()  # the pinned versions
    assert any(ln.startswith("USER ") and "root" not in ln for ln in lines)
    for path in (
        "pyproject.toml",
        "README.md",
        "requirements/deploy.lock",
        "pipelines",
        "docker/dagster.yaml",
        "docker/workspace.yaml",
        "docker/source.yaml",
    ):
        assert (ROOT / path).exists(), path
    # the API it syncs is the declaration built in, and it checks clean
    copied = re.search(r"^COPY docker/source.yaml (\S+)$", (DOCKER / "Dockerfile").read_text(), re.M)
    assert copied and f"ENV SOURCE_DECLARATION={copied.group(1)}" in (DOCKER / "Dockerfile").read_text()
    assert load_declaration(DOCKER / "source.yaml").client.base_url_env == "SOURCE_API_URL"


def test_production_dagster_yaml_is_valid_for_dagster_and_its_launcher():
    config = yaml.safe_load((DOCKER / "dagster.yaml").read_text())
    result = validate_config(dagster_instance_config_schema(), config)
    assert result.success, config_errors(result)
    assert {k for k in config if "storage" in k} == {"storage"}  # one storage block
    storage = validate_config(DagsterPostgresStorage.config_type(), config["storage"]["postgres"])
    assert storage.success, config_errors(storage)
    launcher = config["run_launcher"]
    assert (launcher["module"], launcher["class"]) == ("dagster_docker", "DockerRunLauncher")
    # the run containers get what the code location reads, executor settings included
    forwarded = set(launcher["config"]["env_vars"])
    assert {"SYNC_EXECUTOR", "SYNC_CELERY_BROKER_URL", "SOURCE_RATE_LIMITER_URL", "WAREHOUSE_URL"} <= forwarded
    read = SETTING_NAMES | load_declaration(DOCKER / "source.yaml").variables()  # the deployment's, the API's
    assert forwarded - {"DAGSTER_PG_USER", "DAGSTER_PG_PASSWORD", "DAGSTER_PG_HOST", "DAGSTER_PG_DB"} <= read
    assert load_declaration(DOCKER / "source.yaml").variables() <= forwarded  # a run reaches the API
    checked = validate_config(DockerRunLauncher.config_type(), launcher["config"])
    assert checked.success, config_errors(checked)
    assert launcher["config"]["network"] == "pipelines"
    assert config["run_retries"]["retry_on_asset_or_op_failure"] is False
    assert config["run_monitoring"]["enabled"] is True
    runs = config["concurrency"]["runs"]
    assert {"key": "dagster/partition", "value": {"applyLimitPerUniqueValue": True}, "limit": 1} in runs[
        "tag_concurrency_limits"
    ]
    assert config["concurrency"]["pools"]["default_limit"] >= 1


def test_the_workspace_points_at_the_user_code_service(compose):
    workspace = yaml.safe_load((DOCKER / "workspace.yaml").read_text())
    (entry,) = workspace["load_from"]
    command = compose["services"]["user_code"]["command"]
    assert entry["grpc_server"]["host"] == "user_code"
    assert str(entry["grpc_server"]["port"]) == command[command.index("-p") + 1]
    assert compose["services"]["webserver"]["command"][-1] == "/opt/dagster/dagster_home/workspace.yaml"


def test_the_user_code_server_command_starts_and_answers(compose, tmp_path):
    service = compose["services"]["user_code"]
    command = list(service["command"])
    port = free_port()
    command[command.index("-h") + 1] = "127.0.0.1"  # loopback here; 0.0.0.0 inside the container
    command[command.index("-p") + 1] = str(port)
    command[0] = str(Path(sys.executable).parent / command[0])
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path), "WAREHOUSE_URL": f"sqlite:///{tmp_path / 'wh.db'}"}
    server = subprocess.Popen(
        _as_pid_one(command),
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    health = list(service["healthcheck"]["test"][1:])
    health[0] = str(Path(sys.executable).parent / health[0])
    health[health.index("-p") + 1] = str(port)
    try:
        deadline = time.monotonic() + 90
        while True:
            assert server.poll() is None, server.stderr.read().decode()[-2000:]
            check = subprocess.run(health, capture_output=True, text=True, timeout=30)
            if check.returncode == 0:
                break
            assert time.monotonic() < deadline, check.stdout + check.stderr
            time.sleep(1)
        from dagster._grpc.client import DagsterGrpcClient

        client = DagsterGrpcClient(port=port, host="127.0.0.1")
        assert client.ping("hello")["echo"] == "hello"
        names = client.list_repositories()
        assert "pipelines.definitions" in str(names)
    finally:
        _stop(server)


def test_the_celery_worker_command_starts_and_answers_its_healthcheck(compose, tmp_path):
    """The worker service's command, on the machine's Redis: it starts, loads the code location's
    Celery app and answers the compose file's health check (a ping through the broker)."""
    service = compose["services"]["celery_worker"]
    command = list(service["command"])
    assert command[:6] == ["celery", "-A", "pipelines.workers", "worker", "-Q", "dagster"]
    command[0] = str(Path(sys.executable).parent / "celery")
    broker = "redis://127.0.0.1:6379/12"
    env = {**os.environ, "SYNC_CELERY_BROKER_URL": broker, "HOSTNAME": f"test-{free_port()}",
           "WAREHOUSE_URL": f"sqlite:///{tmp_path / 'wh.db'}"}  # fmt: skip
    command[command.index("-n") + 1] = f"worker@{env['HOSTNAME']}"
    worker = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
    )
    health = service["healthcheck"]["test"][1].replace("$$HOSTNAME", env["HOSTNAME"])
    health = health.replace("celery ", str(Path(sys.executable).parent / "celery") + " ", 1)
    try:
        deadline = time.monotonic() + 90
        while True:
            assert worker.poll() is None, worker.stderr.read().decode()[-3000:]
            check = subprocess.run(health, shell=True, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
            if check.returncode == 0:
                break
            assert time.monotonic() < deadline, check.stdout + check.stderr
            time.sleep(1)
        assert "pong" in check.stdout
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=60)


def test_the_env_file_loads_as_it_ships(monkeypatch):
    """docker/.env.example as copied: every variable is one we read (or someone else's, or the
    image's declaration's), none is retired, and the settings load; its SOURCE_API_URL, which
    docker/source.yaml reads, is an API's URL, never the empty value."""
    from pipelines.retired_variables import check_environment
    from pipelines.settings import Settings, unknown_variables
    from pipelines.source.config import resolve_base_url

    pairs = dict(
        line.split("=", 1)
        for line in (DOCKER / ".env.example").read_text().splitlines()
        if "=" in line and not line.startswith("#")
    )
    declared = load_declaration(DOCKER / "source.yaml")
    assert unknown_variables(pairs, declared.variables()) == {}
    check_environment(pairs, declared.variables())
    for name, value in pairs.items():
        monkeypatch.setenv(name, value)
    Settings()
    assert resolve_base_url(declared, pairs) == pairs["SOURCE_API_URL"] and pairs["SOURCE_API_URL"].startswith(
        "https://"
    )


def _as_pid_one(command: list[str]) -> list[str]:
    """``command`` with SIGINT and SIGTERM at their defaults, as a container's command starts.
    A job a non-interactive shell puts in the background inherits SIGINT ignored, and Dagster's
    code server maps SIGTERM to SIGINT's handler: started from such a job (a CI run launched with
    ``&``), the server ignored SIGTERM and never stopped."""
    reset = (
        "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
        "signal.signal(signal.SIGTERM, signal.SIG_DFL); os.execv(sys.argv[1], sys.argv[1:])"
    )
    return [sys.executable, "-c", reset, *command]


def _stop(server: subprocess.Popen) -> None:
    """SIGTERM to the server's process group, as ``docker stop`` sends it; killed after 30 s, and
    the test fails with what it wrote."""
    os.killpg(server.pid, signal.SIGTERM)
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        said = server.communicate(timeout=30)[1].decode(errors="replace")[-2000:]
        raise AssertionError(f"the server did not stop within 30 s of SIGTERM; it wrote:\n{said}") from None
