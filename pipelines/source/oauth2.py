"""OAuth2's client credentials grant, for the client: an access token fetched from the declared
token endpoint, kept until shortly before it expires, and fetched again once when the API
answers 401 to it.

The client's id and secret go to the token endpoint alone (HTTP basic, RFC 6749 2.3.1), the
access token to the API alone (``Authorization: Bearer``); every token is known to the
process's scrubber as soon as it arrives. A token endpoint that refuses the credential stops
every call (``ApiFailure``), naming the variable of the secret.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Awaitable, Callable
from urllib.parse import urlencode

import httpx
import orjson
from multidict import CIMultiDict, CIMultiDictProxy

from pipelines.core.errors import ApiFailure
from pipelines.core.redact import register
from pipelines.source.declaration import OAuth2ClientCredentials
from pipelines.source.wire import Answer, Call

Exchange = Callable[[Call], Awaitable[Answer]]


class AccessToken:
    """One client's token: ``current()`` is usable now (fetched when missing or about to
    expire); ``renew()`` fetches a new one (a 401 to the current one)."""

    def __init__(
        self,
        spec: OAuth2ClientCredentials,
        client_id: str,
        client_secret: str,
        token_url: str,
        exchange: Exchange,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.spec, self.token_url, self.exchange, self.clock = spec, token_url, exchange, clock
        self._basic = "Basic " + base64.b64encode(f"{client_id}:{client_secret}".encode()).decode()
        self.value: str | None = None
        self.expires_at = 0.0
        self.fetched = 0  # tokens fetched (not the API's calls: the token endpoint is not billed)
        self._lock = asyncio.Lock()

    async def current(self) -> str:
        if self.value is not None and self.clock() < self.expires_at - self.spec.refresh_before:
            return self.value
        async with self._lock:  # one fetch for every call waiting on it
            if self.value is None or self.clock() >= self.expires_at - self.spec.refresh_before:
                await self._fetch()
        assert self.value is not None
        return self.value

    async def renew(self, refused: str) -> str:
        """A new token, unless another call renewed the refused one already."""
        async with self._lock:
            if self.value == refused:
                await self._fetch()
        assert self.value is not None
        return self.value

    async def _fetch(self) -> None:
        form = {"grant_type": "client_credentials", **({"scope": self.spec.scope} if self.spec.scope else {})}
        headers = httpx.Headers(
            {
                "Authorization": self._basic,
                "Content-Type": "application/x-www-form-urlencoded",
                "Accept": "application/json",
            }
        )
        call = Call("POST", self.token_url, CIMultiDictProxy(CIMultiDict(headers.items())), urlencode(form).encode())
        answer = await self.exchange(call)
        token, lifetime = _token_of(answer)
        if token is None:
            raise ApiFailure(
                "auth_failed",
                f"the token endpoint {httpx.URL(self.token_url).copy_with(query=None)} answered HTTP "
                f"{answer.status_code} without an access token: the client's id or secret is refused",
                (self.spec.client_id_env, self.spec.client_secret_env),
            )
        register([token])
        self.value, self.expires_at = token, self.clock() + lifetime
        self.fetched += 1


def _token_of(answer: Answer) -> tuple[str | None, float]:
    """The access token and its lifetime in seconds (an hour when unsaid)."""
    if answer.status_code != 200:
        return None, 0.0
    try:
        body = orjson.loads(answer.body)
    except orjson.JSONDecodeError:
        return None, 0.0
    token = body.get("access_token") if isinstance(body, dict) else None
    if not isinstance(token, str) or not token:
        return None, 0.0
    lifetime = body.get("expires_in", 3600)
    return token, float(lifetime) if isinstance(lifetime, int | float) and lifetime > 0 else 3600.0
