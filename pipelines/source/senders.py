"""How a built request reaches the API and its answer comes back: the one seam between the client
and the network. The client speaks httpx (``httpx.Request`` in, ``httpx.Response`` and the body's
bytes out); what moves the bytes is one of two senders:

* ``AiohttpSender``, for an API over the network (and through a proxy). Measured on this
  project's benchmark (``make bench ARGS="--sections ceiling"``), ``httpx.AsyncClient`` spends
  about 1 ms of CPU per request where a bare aiohttp loop spends 70 us; with aiohttp under
  httpx's own client (``httpx_aiohttp``) it still spends 200 us, the rest being the client's
  cookie, auth and event-hook machinery we do not use. This sender hands aiohttp the request
  as httpx built it (its URL already percent-encoded, sent as is) and reads the raw body with
  the size cap and decoders of ``body.py``.
* ``HttpxSender``: ``httpx.AsyncClient.send`` on a given httpx transport (the embedded sample
  API in process, a test's transport).

Either way a failure before a byte reached the API is one of ``answers.UNSENT`` (not billed);
any later one is another ``httpx.TransportError`` (billed).
"""

from __future__ import annotations

import asyncio
from typing import Protocol

import aiohttp
import httpx
import yarl

from pipelines.source.body import read_body, read_chunks


class Sender(Protocol):
    async def exchange(self, request: httpx.Request, max_bytes: int) -> tuple[httpx.Response, bytes]: ...

    async def aclose(self) -> None: ...


class HttpxSender:
    def __init__(self, http: httpx.AsyncClient) -> None:
        self._http = http

    async def exchange(self, request: httpx.Request, max_bytes: int) -> tuple[httpx.Response, bytes]:
        response = await self._http.send(request, stream=True)
        try:
            body = await read_body(response, max_bytes)
        finally:
            await response.aclose()
        return response, body

    async def aclose(self) -> None:
        await self._http.aclose()


class AiohttpSender:
    """``max_connections`` pooled connections, each kept ``keepalive`` seconds when idle."""

    def __init__(
        self,
        *,
        max_connections: int,
        keepalive: float,
        connect_timeout: float,
        read_timeout: float,
        proxy_url: str | None = None,
    ) -> None:
        self._limit, self._keepalive = max_connections, keepalive
        self._timeout = aiohttp.ClientTimeout(total=None, sock_connect=connect_timeout, sock_read=read_timeout)
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
                ssl=httpx.create_ssl_context(),  # the CA bundle httpx verifies with (certifi's)
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=self._timeout,
                auto_decompress=False,  # body.py decodes, counting against the cap as it goes
                skip_auto_headers=("User-Agent", "Accept-Encoding", "Accept"),
                cookie_jar=aiohttp.DummyCookieJar(),
                trust_env=False,
            )
        return self._session

    async def exchange(self, request: httpx.Request, max_bytes: int) -> tuple[httpx.Response, bytes]:
        session = self._open()
        # as written (httpx's items() are lower-cased): some servers read headers case-sensitively
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw if k.lower() != b"host"]
        url = yarl.URL(str(request.url), encoded=True)  # percent-encoded by us: sent byte for byte
        if self._proxy_headers is not None and url.scheme == "http":
            # plain HTTP goes to the proxy itself (no CONNECT), so it reads the request's own
            # headers; to an https origin the credential goes only in the CONNECT (proxy_headers)
            headers += list(self._proxy_headers.items())
        try:
            async with session.request(
                request.method,
                url,
                headers=headers,
                allow_redirects=False,
                proxy=self._proxy,
                proxy_headers=self._proxy_headers,
            ) as answer:
                response = httpx.Response(answer.status, headers=list(answer.raw_headers), request=request)
                body = await read_chunks(response.headers, answer.content.iter_any(), max_bytes)
        except aiohttp.ClientError as exc:  # its timeouts too; the client's own deadline passes through
            raise _as_httpx(exc, request) from exc
        return response, body

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            await asyncio.sleep(0)  # lets the connector's transports close


def _as_httpx(exc: Exception, request: httpx.Request) -> httpx.TransportError:
    """The httpx error of the same meaning: whether the request can have reached the API decides
    whether it is billed (``answers.UNSENT``)."""
    message = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return httpx.ConnectTimeout(message, request=request)
    if isinstance(exc, aiohttp.ClientProxyConnectionError | aiohttp.ClientHttpProxyError):
        return httpx.ProxyError(message, request=request)
    if isinstance(exc, aiohttp.ClientConnectorError):
        return httpx.ConnectError(message, request=request)
    if isinstance(exc, aiohttp.InvalidURL | aiohttp.NonHttpUrlClientError):
        return httpx.UnsupportedProtocol(message, request=request)
    if isinstance(exc, aiohttp.SocketTimeoutError | aiohttp.ServerTimeoutError):
        return httpx.ReadTimeout(message, request=request)
    if isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError | aiohttp.ClientResponseError):
        return httpx.RemoteProtocolError(message, request=request)
    return httpx.ReadError(message, request=request)
