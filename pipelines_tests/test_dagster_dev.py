"""``dagster dev`` serves the code location: its webserver answers GraphQL with our assets."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from pipelines_tests.helpers import free_port

ROOT = Path(__file__).resolve().parents[1]
QUERY = "{ assetNodes { assetKey { path } dependencyKeys { path } } }"


def test_dagster_dev_serves_the_assets_and_their_lineage(tmp_path):
    port = free_port()
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text((ROOT / "dagster.yaml").read_text())
    env = {**os.environ, "DAGSTER_HOME": str(home), "WAREHOUSE_URL": f"sqlite:///{tmp_path / 'wh.db'}"}
    dagster = str(Path(sys.executable).parent / "dagster")
    proc = subprocess.Popen(
        [dagster, "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        nodes = _wait_for_assets(f"http://127.0.0.1:{port}/graphql", proc)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
    lineage = {"/".join(n["assetKey"]["path"]): sorted("/".join(d["path"]) for d in n["dependencyKeys"]) for n in nodes}
    assert lineage == {
        "watchlist": [],
        "retry_queue": [],
        "job_set": ["retry_queue", "watchlist"],
        "synced_resources": ["job_set"],
        "dead_letter": ["synced_resources"],
    }


def _wait_for_assets(url: str, proc: subprocess.Popen, timeout: float = 120.0) -> list[dict]:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        assert proc.poll() is None, "dagster dev exited early"
        try:
            reply = httpx.post(url, json={"query": QUERY}, timeout=5).json()
            nodes = reply.get("data", {}).get("assetNodes") or []
            if nodes:
                return nodes
            last = reply
        except (httpx.TransportError, ValueError) as exc:
            last = exc
        time.sleep(1)
    raise AssertionError(f"dagster dev did not serve the assets within {timeout}s: {last}")
