"""How a built request reaches the API and its answer comes back: the one seam between the client
and the network. A sender takes a ``wire.Call`` and answers a ``wire.Answer`` (the body read
whole, within the size cap); what moves the bytes is one of three senders:

* ``AiohttpSender``, for an API over the network (and through a proxy). ``httpx.AsyncClient``
  spends more than ten times a bare aiohttp loop's CPU per request, and several times with
  aiohttp under it, in cookie, auth and event-hook machinery we do not use (``make bench``'s
  ceiling section; docs/benchmark.md, "Why the code is as it is"). This sender hands aiohttp the call as
  built (its URL already percent-encoded, sent as is; its headers as written) and reads the raw
  body with the size cap and decoders of ``body.py``.
* ``AsgiSender``: an ASGI app called in process (the embedded sample API), as httpx's
  ``ASGITransport`` calls it but without httpx's client around it.
* ``HttpxSender``: ``httpx.AsyncClient.send`` on a given httpx transport (a test's, or any other
  a caller brings).

Whichever sends, httpx's errors are the vocabulary: a failure before a byte reached the API is
one of ``answers.UNSENT`` (not billed); any later one is another ``httpx.TransportError``
(billed).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from functools import lru_cache
from typing import Any, Protocol
from urllib.parse import unquote

import aiohttp
import httpx
import yarl
from multidict import CIMultiDict, CIMultiDictProxy

from pipelines.source.body import decode_whole, read_body, read_chunks, within
from pipelines.source.declaration import Timeouts
from pipelines.source.wire import Answer, Call

Message = MutableMapping[str, Any]
AsgiApp = Callable[[Message, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]]


class Sender(Protocol):
    # True when the sender ends an exchange at the client's deadline itself (raising
    # TimeoutError); the client times the others
    keeps_deadline: bool

    async def exchange(self, call: Call, max_bytes: int) -> Answer: ...

    async def aclose(self) -> None: ...


class HttpxSender:
    keeps_deadline = False

    def __init__(self, http: httpx.AsyncClient) -> None:
        self._http = http

    async def exchange(self, call: Call, max_bytes: int) -> Answer:
        request = httpx.Request(call.method, call.url, headers=list(call.headers.items()), content=call.body)
        response = await self._http.send(request, stream=True)
        try:
            body = await read_body(response, max_bytes)
        finally:
            await response.aclose()
        return Answer(call, response.status_code, response.headers, body)

    async def aclose(self) -> None:
        await self._http.aclose()


class AsgiSender:
    """``app`` called in process with the call's scope; its exceptions are raised as they are."""

    keeps_deadline = False

    def __init__(self, app: AsgiApp) -> None:
        self._app = app

    async def exchange(self, call: Call, max_bytes: int) -> Answer:
        scheme, _, rest = call.url.partition("://")
        netloc, slash, target = rest.partition("/")
        path, _, query = (slash + target).partition("?")
        hostport = netloc.rpartition("@")[2]
        host, port = hostport.rsplit(":", 1) if hostport.rfind(":") > hostport.rfind("]") else (hostport, "")
        headers = [(b"host", netloc.encode("ascii"))]
        headers += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in call.headers.items()]
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": call.method,
            "headers": headers,
            "scheme": scheme,
            "path": unquote(path),
            "raw_path": path.encode("ascii"),
            "query_string": query.encode("ascii"),
            "server": (host, int(port) if port else (443 if scheme == "https" else 80)),
            "client": ("127.0.0.1", 123),
            "root_path": "",
        }
        done = asyncio.Event()
        asked = False
        start: Message = {}
        parts: list[bytes] = []

        async def receive() -> Message:
            nonlocal asked
            if asked:  # the request's body once; after it, the client goes only once answered
                await done.wait()
                return {"type": "http.disconnect"}
            asked = True
            return {"type": "http.request", "body": call.body or b"", "more_body": False}

        async def send(message: Message) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                parts.append(message.get("body", b""))
                if not message.get("more_body", False):
                    done.set()

        await self._app(scope, receive, send)
        answered = CIMultiDict((k.decode("latin-1"), v.decode("latin-1")) for k, v in start.get("headers", ()))
        body = await read_chunks(answered, _each(parts), max_bytes)
        return Answer(call, start["status"], answered, body)

    async def aclose(self) -> None:
        pass


async def _each(parts: list[bytes]) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


class AiohttpSender:
    """``max_connections`` pooled connections, each kept ``keepalive`` seconds when idle; an
    exchange (a pooled connection waited for, the request, the whole body) ends at ``deadline``
    seconds with ``TimeoutError``: aiohttp's own total timeout, which its session times anyway
    (an ``asyncio.timeout`` around it would be a second timer on every request)."""

    keeps_deadline = True

    def __init__(
        self,
        *,
        max_connections: int,
        keepalive: float,
        connect_timeout: float,
        read_timeout: float,
        deadline: float,
        proxy_url: str | None = None,
    ) -> None:
        self._limit, self._keepalive = max_connections, keepalive
        self._timeout = aiohttp.ClientTimeout(total=deadline, sock_connect=connect_timeout, sock_read=read_timeout)
        self._proxy: yarl.URL | None = None
        self._proxy_headers: dict[str, str] | None = None
        if proxy_url:
            proxy = yarl.URL(proxy_url)
            if proxy.user is not None:
                credentials = aiohttp.encode_basic_auth(proxy.user, proxy.password or "")
                self._proxy_headers = {"Proxy-Authorization": credentials}
            self._proxy = proxy.with_user(None)
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None:  # in the running loop, at the first call
            connector = aiohttp.TCPConnector(
                limit=self._limit,
                keepalive_timeout=self._keepalive,
                ssl=_ssl_context(),  # the CA bundle httpx verifies with (certifi's)
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=self._timeout,
                auto_decompress=False,  # body.py decodes, counting against the cap as it goes
                cookie_jar=aiohttp.DummyCookieJar(),
                trust_env=False,
            )
        return self._session

    async def exchange(self, call: Call, max_bytes: int) -> Answer:
        session = self._open()
        headers: CIMultiDictProxy[str] | CIMultiDict[str] = call.headers  # as written, case kept; taken as is
        url = yarl.URL(call.url, encoded=True)  # percent-encoded by us: sent byte for byte
        if self._proxy_headers is not None and url.scheme == "http":
            # plain HTTP goes to the proxy itself (no CONNECT), so it reads the request's own
            # headers; to an https origin the credential goes only in the CONNECT (proxy_headers)
            headers = CIMultiDict(headers)
            headers.extend(self._proxy_headers)
        try:
            async with session.request(
                call.method,
                url,
                headers=headers,
                data=call.body,
                allow_redirects=False,
                proxy=self._proxy,
                proxy_headers=self._proxy_headers,
            ) as answer:
                if within(answer.headers, max_bytes):  # a declared length under the cap: read whole
                    body = decode_whole(answer.headers, await answer.content.read(), max_bytes)
                else:
                    body = await read_chunks(answer.headers, answer.content.iter_any(), max_bytes)
        except aiohttp.ClientError as exc:  # its timeouts too; the client's own deadline passes through
            raise _as_httpx(exc, call) from exc
        return Answer(call, answer.status, answer.headers, body)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            await asyncio.sleep(0)  # lets the connector's transports close


@lru_cache(maxsize=1)
def _ssl_context() -> ssl.SSLContext:
    """One per process: loading the CA bundle takes about 35 ms, and every step opens a client."""
    return httpx.create_ssl_context()


def _as_httpx(exc: Exception, call: Call) -> httpx.TransportError:
    """The httpx error of the same meaning: whether the request can have reached the API decides
    whether it is billed (``answers.UNSENT``)."""
    message = f"{type(exc).__name__}: {exc} ({call.method})"
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return httpx.ConnectTimeout(message)
    if isinstance(exc, aiohttp.ClientProxyConnectionError | aiohttp.ClientHttpProxyError):
        return httpx.ProxyError(message)
    if isinstance(exc, aiohttp.ClientConnectorError):
        return httpx.ConnectError(message)
    if isinstance(exc, aiohttp.InvalidURL | aiohttp.NonHttpUrlClientError):
        return httpx.UnsupportedProtocol(message)
    if isinstance(exc, aiohttp.SocketTimeoutError | aiohttp.ServerTimeoutError):
        return httpx.ReadTimeout(message)
    if isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError | aiohttp.ClientResponseError):
        return httpx.RemoteProtocolError(message)
    return httpx.ReadError(message)


def sender_for(
    transport: httpx.AsyncBaseTransport | Sender | None,
    http: httpx.AsyncClient,
    max_connections: int,
    timeouts: Timeouts,
    proxy_url: str | None,
) -> Sender:
    """What a client sends through: aiohttp over the network (None), a test's httpx transport
    (through ``http``, the client built on it), or the ``Sender`` given (the embedded sample's)."""
    if isinstance(transport, httpx.AsyncBaseTransport):
        return HttpxSender(http)
    if transport is not None:
        return transport
    return AiohttpSender(
        max_connections=max_connections,
        keepalive=timeouts.keepalive,
        connect_timeout=timeouts.connect,
        read_timeout=timeouts.read,
        deadline=timeouts.deadline,
        proxy_url=proxy_url,
    )
