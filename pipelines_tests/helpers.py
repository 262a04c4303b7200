"""Test helpers: a real sample API server on a loopback port, and PostgreSQL databases."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import sqlalchemy as sa
import yaml

from pipelines.bench.postgres import POSTGRES_URL, dagster_home_on_postgres, postgres_database
from pipelines.core.fingerprint import fingerprint
from pipelines.sample_api import World
from pipelines.sample_api.process import SampleServer, free_port
from pipelines.sample_api.shop import shop_id
from pipelines.settings import Settings
from pipelines.source.declaration import declare
from pipelines.sync.resources import DeclaredSource, WarehouseResource, declared_source
from pipelines.warehouse.schema import resources

__all__ = ["POSTGRES_URL", "SampleServer", "dagster_home_on_postgres", "free_port", "postgres_database"]

ROOT = Path(__file__).resolve().parents[1]


SETTING_NAMES = {name.upper() for name in Settings.model_fields}  # every environment variable we read


def config_errors(result) -> list[str]:
    """The messages of a failed ``validate_config`` (for an assertion's message)."""
    return [e.message for e in result.errors or []]


def materialize_in_process_group(select: str, partition: str, env: dict, log_path) -> subprocess.Popen:
    """``dagster asset materialize`` as a real process, in its own process group (kill it whole)."""
    dagster = str(Path(sys.executable).parent / "dagster")
    log = open(log_path, "wb")  # noqa: SIM115 - handed to the child
    return subprocess.Popen(
        [dagster, "asset", "materialize", "-m", "pipelines.definitions", "--select", select, "--partition", partition],
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


class FlakyTcpProxy:
    """A loopback TCP proxy (here: in front of PostgreSQL) that can cut the first connection
    whose client bytes contain a pattern, then refuse connections for a while."""

    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self.cuts = 0
        self._pattern: bytes | None = None
        self._refuse_for = 0.0
        self._cut_all = False
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._closed = False
        self._listener = self._listen()
        threading.Thread(target=self._accept_loop, daemon=True).start()

    def cut_on(self, pattern: bytes, refuse_for: float, every_connection: bool = False) -> None:
        """Cut the connection that sends ``pattern`` (``every_connection``: and every other one,
        as a database that went down would), then refuse connections for ``refuse_for`` seconds."""
        self._pattern, self._refuse_for, self._cut_all = pattern, refuse_for, every_connection

    def close(self) -> None:
        self._closed = True
        self._listener.close()

    def _listen(self) -> socket.socket:
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", self.port))
        s.listen(64)
        return s

    def _accept_loop(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                time.sleep(0.01)  # listener closed during a refusal window
                continue
            upstream = socket.create_connection(self.target)
            with self._lock:
                self._open.update((client, upstream))
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, from_client: bool) -> None:
        try:
            while data := src.recv(65536):
                if from_client and self._pattern and self._pattern in data:
                    with self._lock:
                        if self._pattern:
                            self._pattern = None
                            self.cuts += 1
                            self._refuse()
                            cut = {src, dst} | (self._open if self._cut_all else set())
                            for sock in cut:  # shutdown first: it wakes the other pump's recv
                                with contextlib.suppress(OSError):
                                    sock.shutdown(socket.SHUT_RDWR)
                                sock.close()
                            return
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def _refuse(self) -> None:
        """Close the listener (new connections: ECONNREFUSED) and reopen it later."""
        self._listener.close()

        def reopen() -> None:
            time.sleep(self._refuse_for)
            self._listener = self._listen()

        threading.Thread(target=reopen, daemon=True).start()


class WebhookReceiver:
    """A Slack-style webhook on a loopback port that records every JSON body it is sent."""

    def __init__(self, status: int = 200) -> None:
        receiver = self
        self.status = status
        self.bodies: list[dict] = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
                length = int(self.headers.get("content-length", 0))
                receiver.bodies.append(json.loads(self.rfile.read(length)))
                self.send_response(receiver.status)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/alerts"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()  # quick shutdown

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class ForwardProxy:
    """An HTTP forward proxy on a loopback port that demands basic proxy credentials (a paid
    rotation proxy's shape): ``http://user:password@127.0.0.1:port``."""

    def __init__(self, user: str, password: str) -> None:
        import base64
        import http.client
        from urllib.parse import urlsplit

        expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        proxy = self
        self.forwarded = 0
        self.refused = 0

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
                if self.headers.get("Proxy-Authorization") != expected:
                    proxy.refused += 1
                    self.send_response(407)
                    self.send_header("Proxy-Authenticate", 'Basic realm="proxy"')
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                target = urlsplit(self.path)
                upstream = http.client.HTTPConnection(target.hostname, target.port, timeout=30)
                headers = {k: v for k, v in self.headers.items() if not k.lower().startswith("proxy-")}
                upstream.request("GET", target.path + (f"?{target.query}" if target.query else ""), headers=headers)
                answer = upstream.getresponse()
                body = answer.read()
                proxy.forwarded += 1
                self.send_response(answer.status)
                for name, value in answer.getheaders():
                    if name.lower() not in ("content-length", "transfer-encoding", "connection"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                upstream.close()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://{user}:{password}@127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()  # quick shutdown

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


ASSET_NODES = "{ assetNodes { assetKey { path } dependencyKeys { path } } }"


class DagsterDev:
    """``dagster dev`` (webserver and daemon) on a loopback port, in its own process group."""

    def __init__(
        self, home: Path, env: dict[str, str], log_path: Path, target: list[str] | None = None, cwd: Path = ROOT
    ) -> None:
        """``target``: what to serve (default: this repository's workspace.yaml)."""
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.home = home
        self._log = open(log_path, "wb")  # noqa: SIM115 - handed to the child, closed in stop()
        dagster = str(Path(sys.executable).parent / "dagster")
        self.process = subprocess.Popen(
            [dagster, "dev", *(target or ["-w", "workspace.yaml"]), "-h", "127.0.0.1", "-p", str(self.port)],
            cwd=cwd,
            env={**os.environ, **env, "DAGSTER_HOME": str(home)},
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def graphql(self, query: str, variables: dict | None = None, timeout: float = 30) -> dict:
        reply = httpx.post(f"{self.url}/graphql", json={"query": query, "variables": variables or {}}, timeout=timeout)
        reply.raise_for_status()
        return reply.json()

    def wait_for_assets(self, timeout: float = 120.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        last: object = None
        while time.monotonic() < deadline:
            assert self.process.poll() is None, "dagster dev exited early"
            try:
                nodes = (self.graphql(ASSET_NODES, timeout=5).get("data") or {}).get("assetNodes") or []
                if nodes:
                    return nodes
            except (httpx.TransportError, httpx.HTTPStatusError, ValueError) as exc:
                last = exc
            time.sleep(1)
        raise AssertionError(f"dagster dev did not serve the assets within {timeout}s: {last}")

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
        self._log.close()


BEARER = {"type": "bearer", "token_env": "SOURCE_API_TOKEN"}
_SOURCES = Path(tempfile.mkdtemp(prefix="pipelines-test-sources-"))


def source_file(base_url: str | None = None, changes: dict | None = None) -> Path:
    """A declaration of the API of docs/source-api.md at ``base_url`` (None: the embedded sample
    API) with ``changes`` by dotted key (``{"rate.max_concurrency": 4}``), written to a file of
    its own, as a user writes one."""
    source = declare(base_url, {"detail.required": ["id", "version"], **(changes or {})})
    path = _SOURCES / f"source-{uuid.uuid4().hex[:12]}.yaml"
    path.write_text(yaml.safe_dump(source.model_dump(mode="json", exclude_defaults=True), sort_keys=False))
    return path


def source_env(base_url: str | None = None, changes: dict | None = None) -> dict[str, str]:
    """The environment of a single-source deployment of ``source_file(base_url, changes)``."""
    return {"SOURCE_DECLARATION": str(source_file(base_url, changes))}


def api_resource(base_url: str | None = None, changes: dict | None = None) -> DeclaredSource:
    """The source resource of ``source_file(base_url, changes)``."""
    return declared_source(source_file(base_url, changes))


def sync_resources(warehouse_url: str, base_url: str | None = None, changes: dict | None = None) -> dict[str, object]:
    """The two resources every sync needs: the source (``source_file``'s) and the warehouse."""
    return {"source_api": api_resource(base_url, changes), "warehouse": WarehouseResource(url=warehouse_url)}


def client_settings(
    base_url: str, changes: dict | None = None, token: str | None = None, rate_limiter_url: str | None = None
):
    """A client of the docs/source-api.md API at ``base_url``, bearer ``token``, with ``changes``
    to its declaration by dotted key."""
    from pipelines.core.urls import strip_userinfo
    from pipelines.source.config import ClientSettings, Credentials

    source = declare(
        strip_userinfo(base_url), {"client.auth": BEARER, "detail.required": ["id", "version"], **(changes or {})}
    )
    return ClientSettings(base_url, source, Credentials(token=token), rate_limiter_url=rate_limiter_url)


SAMPLE_DECLARATION = ROOT / "pipelines/defs/sample/defs.yaml"
SHOP_DECLARATION = ROOT / "examples/sample_shop.yaml"
PROFILES = {"items": SAMPLE_DECLARATION, "shop": SHOP_DECLARATION}


def declaration_at(declaration: Path, base_url: str, out_dir: Path, changes: dict | None = None) -> Path:
    """``declaration`` pointed at ``base_url`` instead of the embedded sample (as a user points a
    declaration at their API), with ``changes`` by dotted key; written under ``out_dir``."""

    doc = yaml.safe_load(declaration.read_text())
    doc = doc["attributes"] if "type" in doc else doc  # a component's defs.yaml: its declaration
    client = doc["client"]
    client.pop("sample", None)
    client["base_url"] = base_url
    for key, value in (changes or {}).items():
        *parents, last = key.split(".")
        node = doc
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    path = out_dir / f"{declaration.stem}-{len(list(out_dir.glob('*.yaml')))}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def truth(profile: str, world: World, day: int) -> dict[str, str]:
    """Every live resource's id (as the source spells it) and fingerprint on ``day``."""
    out = {}
    for rid in world.ids(day):
        record = world.record(rid, day)
        if profile == "items":
            out[rid] = fingerprint(record, ["version"])
        else:
            out[str(shop_id(rid))] = fingerprint({"updated_at": record["updated_at"]}, ["updated_at"])
    return out


def stored(store) -> dict[str, tuple[str, str]]:
    with store.engine.connect() as conn:
        return {r.resource_id: (r.status, r.fingerprint) for r in conn.execute(sa.select(resources))}


def dg_project(root: Path, module: str, sources: dict[str, str]) -> Path:
    """A team's dg project: ``[tool.dg]`` in pyproject.toml, one folder per source."""
    (root / "pyproject.toml").write_text(
        textwrap.dedent(f"""\
            [project]
            name = "{module.replace("_", "-")}"
            version = "0.1.0"

            [tool.dg]
            directory_type = "project"

            [tool.dg.project]
            root_module = "{module}"
            defs_module = "{module}.defs"
            """)
    )
    defs = root / module / "defs"
    defs.mkdir(parents=True)
    (root / module / "__init__.py").write_text("")
    (root / module / "definitions.py").write_text(  # the code location: these sources, our deployment
        "from pathlib import Path\n\n"
        "from dagster import definitions\n\n"
        "from pipelines.definitions import build_defs\n"
        "from pipelines.settings import load_settings\n\n\n"
        "@definitions\n"
        "def defs():\n"
        "    return build_defs(load_settings(), project=Path(__file__).parent)\n"
    )
    (defs / "__init__.py").write_text("")
    for name, text in sources.items():
        (defs / name).mkdir()
        (defs / name / "defs.yaml").write_text(text)
    return root / module
