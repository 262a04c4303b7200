"""Celery worker nodes as real processes (``celery -A pipelines.workers worker``), for the tests
and the benchmark: each in its own process group, so one can be killed whole with ``kill -9``."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PR_SET_PDEATHSIG = 1  # prctl(2)


class CeleryWorker:
    """One worker node named ``name``, running ``concurrency`` pool processes."""

    def __init__(self, name: str, env: dict[str, str], log_path: Path, concurrency: int = 1) -> None:
        self.name = name
        self.log_path = log_path
        celery = str(Path(sys.executable).parent / "celery")
        self._log = open(log_path, "wb")  # noqa: SIM115 - handed to the child
        self.process = subprocess.Popen(
            [
                celery,
                "-A",
                "pipelines.workers",
                "worker",
                "-Q",
                "dagster",
                "-n",
                f"{name}@%h",
                "--concurrency",
                str(concurrency),
                "--prefetch-multiplier",
                "1",
                "--loglevel",
                "INFO",
                "--without-gossip",
                "--without-mingle",
            ],
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while " ready." not in self.log():
            if self.process.poll() is not None:
                raise RuntimeError(f"celery worker {self.name} exited:\n{self.log()[-3000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"celery worker {self.name} not ready in {timeout}s:\n{self.log()[-3000:]}")
            time.sleep(0.2)

    def kill(self) -> None:
        """``kill -9`` the node: its main process and its pool processes, with no warning."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)  # warm shutdown: finish, then exit
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()


def _die_with_parent() -> None:
    """In the child, before it runs celery: a SIGTERM (a warm shutdown) when the process that
    started it dies, however it dies. A test or bench killed mid-run must not leave workers on
    the shared broker to take the next run's steps with this run's environment (Linux only)."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def start_workers(count: int, env: dict[str, str], log_dir: Path, concurrency: int = 1) -> list[CeleryWorker]:
    """``count`` worker nodes, ready to take steps."""
    workers = [CeleryWorker(f"w{i}", env, log_dir / f"worker{i}.log", concurrency) for i in range(1, count + 1)]
    try:
        for worker in workers:
            worker.wait_ready()
    except Exception:
        for worker in workers:
            worker.stop()
        raise
    return workers
