"""How a declared auth puts its credential on the client's calls: one small class per kind,
built from its spec by ``authenticator_for`` (``AUTHENTICATORS`` maps each spec's ``type`` to its
class), the way dlt's auth classes and Airbyte's component factory do it.

An authenticator reads its credential from the values of the variables its spec names
(``read``, in ``variables()``'s order), sets the client's default headers and query parameters
once (``apply``), and, for OAuth2, holds the token it fetches and renews (``token``). A new kind
of auth is its spec in ``declaration.py``, a class here, and its entry in ``AUTHENTICATORS``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import httpx

from pipelines.core.urls import strip_userinfo
from pipelines.source.oauth2 import AccessToken, Exchange


@dataclass(frozen=True)
class Credentials:
    token: str | None = None  # bearer token or API key
    username: str | None = None  # basic auth's, or an OAuth2 client's id
    password: str | None = None  # basic auth's, or an OAuth2 client's secret
    headers: dict[str, str] = field(default_factory=dict)  # client.secret_headers, resolved
    params: dict[str, str] = field(default_factory=dict)  # client.secret_params, resolved

    def values(self) -> list[str]:
        return [v for v in (self.token, self.password, *self.headers.values(), *self.params.values()) if v]


class Authenticator:
    """No credential of its own (``type: none``); the base of the others."""

    token: AccessToken | None = None  # OAuth2's: fetched when the client opens, renewed on a 401
    # Which Credentials fields the spec's variables fill, in ``variables()``'s order.
    reads: ClassVar[tuple[str, ...]] = ()

    def __init__(self, spec: Any, credentials: Credentials, base_url: str, exchange: Exchange) -> None:
        self.spec, self.credentials = spec, credentials

    @classmethod
    def read(cls, values: list[str | None]) -> Credentials:
        """The credential held by the spec's variables' values."""
        read = dict(zip(cls.reads, values, strict=True))
        return Credentials(token=read.get("token"), username=read.get("username"), password=read.get("password"))

    def apply(self, headers: dict[str, str], params: dict[str, str]) -> bool:
        """Put the credential in the client's default headers or query parameters; False when
        there is none to put (the base URL's own user and password may then serve)."""
        return False

    @property
    def setting(self) -> str | None:
        """The variable a refused credential's message names (None: the auth names none)."""
        variables = self.spec.variables()
        return variables[-1] if variables else None


class BearerToken(Authenticator):
    reads = ("token",)

    def apply(self, headers: dict[str, str], params: dict[str, str]) -> bool:
        if not self.credentials.token:
            return False
        headers["Authorization"] = f"Bearer {self.credentials.token}"
        return True


class ApiKey(Authenticator):
    reads = ("token",)

    def apply(self, headers: dict[str, str], params: dict[str, str]) -> bool:
        if not self.credentials.token:
            return False
        if self.spec.location == "header":
            headers[self.spec.name] = self.credentials.token
        else:  # in the query: the redactor keeps it out of every stored or logged URL
            params[self.spec.name] = self.credentials.token
        return True


class HttpBasic(Authenticator):
    reads = ("username", "password")

    def apply(self, headers: dict[str, str], params: dict[str, str]) -> bool:
        if self.credentials.username is None:
            return False
        headers["Authorization"] = basic_header(self.credentials.username, self.credentials.password or "")
        return True


class OAuth2Bearer(Authenticator):
    """The client's id and secret go to the token endpoint alone; the API sees the access token
    (``source/oauth2.py``), set on the calls by the client as it arrives."""

    reads = ("username", "password")

    def __init__(self, spec: Any, credentials: Credentials, base_url: str, exchange: Exchange) -> None:
        super().__init__(spec, credentials, base_url, exchange)
        token_url = spec.token_url
        if token_url.startswith("/"):  # a path on the API's own host
            token_url = str(httpx.URL(strip_userinfo(base_url)).join(token_url))
        self.token = AccessToken(spec, credentials.username or "", credentials.password or "", token_url, exchange)


# Each declared auth's ``type`` and the class that carries it.
AUTHENTICATORS: dict[str, type[Authenticator]] = {
    "none": Authenticator,
    "bearer": BearerToken,
    "api_key": ApiKey,
    "basic": HttpBasic,
    "oauth2_client_credentials": OAuth2Bearer,
}


def authenticator_for(spec: Any, credentials: Credentials, base_url: str, exchange: Exchange) -> Authenticator:
    """The authenticator of a declared ``client.auth``."""
    return AUTHENTICATORS[spec.type](spec, credentials, base_url, exchange)


def authorize(
    spec: Any,
    credentials: Credentials,
    base_url: str,
    exchange: Exchange,
    headers: dict[str, str],
    params: dict[str, str],
) -> Authenticator:
    """Set the client's default ``headers`` and ``params`` for its declared auth (a user and
    password in the base URL become basic auth when the auth sets nothing) and the declared
    secret headers and parameters; the authenticator, for what it does later (OAuth2's token)."""
    authenticator = authenticator_for(spec, credentials, base_url, exchange)
    base = httpx.URL(base_url)
    if not authenticator.apply(headers, params) and base.userinfo:
        headers["Authorization"] = basic_header(base.username, base.password)
    headers.update({k: v for k, v in credentials.headers.items() if v})  # client.secret_headers
    params.update({k: v for k, v in credentials.params.items() if v})  # client.secret_params
    return authenticator


def basic_header(username: str, password: str) -> str:
    """The Authorization header httpx's BasicAuth would add, encoded as httpx encodes it."""
    request = httpx.Request("GET", "http://localhost/")
    return next(httpx.BasicAuth(username, password).auth_flow(request)).headers["Authorization"]
