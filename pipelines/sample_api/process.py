"""The sample API as a real HTTP server in its own process on a loopback port, as a user starts
it (``python -m pipelines.sample_api``): for tests about HTTP behaviour and for the benchmark."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SampleServer:
    def __init__(self, **knobs: object) -> None:
        for attempt in range(3):  # a port found free may be taken before the server binds it
            self.port = free_port()
            self.url = f"http://127.0.0.1:{self.port}"
            args = [sys.executable, "-m", "pipelines.sample_api", "--port", str(self.port)]
            for name, value in knobs.items():
                args += ["--" + name.replace("_", "-"), str(value)]
            self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            try:
                self._wait_ready()
                return
            except RuntimeError as exc:
                if "address already in use" not in str(exc).lower() or attempt == 2:
                    raise

    def _wait_ready(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                said = self.process.stderr.read().decode() if self.process.stderr else ""
                raise RuntimeError(f"sample API exited: {said}")
            try:
                httpx.get(f"{self.url}/_sim/stats", timeout=1.0)
                return
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError(f"sample API did not answer on {self.url} within {timeout}s")

    def stats(self) -> dict[str, int]:
        return httpx.get(f"{self.url}/_sim/stats").json()

    def timeline(self) -> list[list[int]]:
        """``[second, requests, 429s]`` since the last reset."""
        return httpx.get(f"{self.url}/_sim/timeline").json()

    def peak_1s(self) -> int:
        """The most requests the server received in any one second since the last reset."""
        return int(httpx.get(f"{self.url}/_sim/peak").json()["peak_1s"])

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
