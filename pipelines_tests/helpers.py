"""Test helpers: a real sample API server on a loopback port, and PostgreSQL databases."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager

import httpx
import sqlalchemy as sa

POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SampleServer:
    """``python -m pipelines.sample_api`` in its own process, as a user would start it."""

    def __init__(self, **knobs: object) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        args = [sys.executable, "-m", "pipelines.sample_api", "--port", str(self.port)]
        for name, value in knobs.items():
            args += ["--" + name.replace("_", "-"), str(value)]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self._wait_ready()

    def _wait_ready(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"sample API exited: {self.process.stderr.read().decode()}")
            try:
                httpx.get(f"{self.url}/_sim/stats", timeout=1.0)
                return
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError(f"sample API did not answer on {self.url} within {timeout}s")

    def stats(self) -> dict[str, int]:
        return httpx.get(f"{self.url}/_sim/stats").json()

    def reset(self) -> None:
        httpx.post(f"{self.url}/_sim/reset").raise_for_status()

    def configure(self, **changes: object) -> dict:
        response = httpx.post(f"{self.url}/_sim/config", json=changes)
        response.raise_for_status()
        return response.json()

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def _admin_engine() -> sa.Engine:
    return sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")


@contextmanager
def postgres_database(prefix: str = "pipelines_test"):
    """A fresh database on the machine's PostgreSQL, dropped afterwards; fails loudly if absent."""
    admin = _admin_engine()
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError as exc:
        raise RuntimeError(
            f"PostgreSQL is required for this test and is not reachable at {POSTGRES_URL}: {exc}. "
            "Start it (pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start) "
            "or set TEST_POSTGRES_URL."
        ) from exc
    url = sa.engine.make_url(POSTGRES_URL).set(database=name)
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
