"""What a client is built from: the source's declaration, whole, and what the deployment resolves
for it (the URL, the credentials read from the variables the declaration names, the shared
rate's Redis). One frozen value object, handed to the client whole."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from pipelines.core.redact import header_problem, register, url_secrets
from pipelines.core.urls import strip_userinfo
from pipelines.source.auth import AUTHENTICATORS, Credentials
from pipelines.source.declaration import SourceDeclaration, base_url_problem


class MissingSecretError(ValueError):
    """A variable the declaration names is not set."""


@dataclass(frozen=True)
class ClientSettings:
    base_url: str
    source: SourceDeclaration
    credentials: Credentials = field(default_factory=Credentials)
    proxy_url: str | None = None
    rate_limiter_url: str | None = None  # redis://...: one rate for every client naming the budget
    learned_rate: float | None = None  # what an earlier client learned of an undeclared rate: start there

    @property
    def budget(self) -> str:
        """The shared rate's name: sources calling one host share it unless they name their own."""
        return self.source.rate.budget or host_of(self.base_url)


def host_of(url: str) -> str:
    """``scheme://host[:port]`` of a URL, without credentials: the default budget's name."""
    parsed = urlsplit(strip_userinfo(url))
    port = parsed.port if parsed.port not in (None, DEFAULT_PORTS.get(parsed.scheme)) else None
    return f"{parsed.scheme}://{parsed.hostname or ''}{f':{port}' if port else ''}"


DEFAULT_PORTS = {"http": 80, "https": 443}


def resolve_credentials(source: SourceDeclaration, environ: Mapping[str, str] = os.environ) -> Credentials:
    """The credentials the declaration names, read now; a variable it names and that is unset is
    an error naming it (calling without the credential would fail every call, and be billed),
    except for the embedded sample API, which takes a credential only when it is given one.
    Every value read is known to the process's scrubber from here on (``redact.register``)."""
    auth, client = source.client.auth, source.client

    def need(name: str) -> str:
        value = environ.get(name)
        if not value and not source.embedded:
            raise MissingSecretError(f"{name} is not set: source {source.name!r} reads its credential from it")
        problem = header_problem(value or "")
        if problem is not None:  # never echo the value: it is a secret
            raise MissingSecretError(f"{name} {problem}")
        return value or ""

    headers = {header: need(name) for header, name in client.secret_headers.items()}
    params = {param: need(name) for param, name in client.secret_params.items()}
    values = [need(name) or None for name in auth.variables()]  # in the order its authenticator reads them
    found = dataclasses.replace(AUTHENTICATORS[auth.type].read(values), headers=headers, params=params)
    register(found.values())
    return found


def resolve_base_url(source: SourceDeclaration, environ: Mapping[str, str] = os.environ) -> str | None:
    """The API's URL (None: the embedded sample API). One read from a variable must be an API's
    base URL; what it holds instead is not shown (a variable named in error may hold anything)."""
    client = source.client
    if client.base_url_env:
        value = environ.get(client.base_url_env, "").strip()
        if not value:
            raise MissingSecretError(f"{client.base_url_env} is not set: source {source.name!r} reads its URL from it")
        problem = base_url_problem(strip_userinfo(value))
        if problem is not None:
            raise MissingSecretError(
                f"{client.base_url_env} (source {source.name!r}'s URL) {problem}; its value is not shown"
            )
        register(url_secrets(value))
        return value
    return client.base_url
