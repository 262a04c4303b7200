"""OAuth2 client credentials against the sample API's token endpoint on loopback: a token
fetched when the client opens, fetched again before it expires, renewed once on a 401; a
refused secret stops every call, named by its variable and never shown."""

import asyncio

import pytest

from pipelines.core.errors import ApiFailure
from pipelines.source.client import ClientSettings, SourceApiClient
from pipelines.source.config import resolve_credentials
from pipelines.source.declaration import declare

ENV = {"SHOP_CLIENT_ID": "cid-42", "SHOP_CLIENT_SECRET": "csecret-SECRET-9f3e"}


def settings(url: str, refresh_before: float = 60.0, secret: str | None = None) -> ClientSettings:
    auth = {
        "type": "oauth2_client_credentials",
        "token_url": "/oauth/token",
        "client_id_env": "SHOP_CLIENT_ID",
        "client_secret_env": "SHOP_CLIENT_SECRET",
        "refresh_before": refresh_before,
    }
    source = declare(url, {"client.auth": auth, "rate.max_concurrency": 4})
    environ = {**ENV, **({"SHOP_CLIENT_SECRET": secret} if secret else {})}
    return ClientSettings(url, source, resolve_credentials(source, environ))


def details(settings: ClientSettings, ids: list[str], pause: float = 0.0):
    async def go():
        async with SourceApiClient(settings) as client:
            answers = []
            for rid in ids:
                answers.append(await client.detail(rid))
                await asyncio.sleep(pause)
            return answers, client

    return asyncio.run(go())


def test_a_token_is_fetched_once_and_carried_by_every_call(sample_server):
    server = sample_server(resources=50, oauth_client_id="cid-42", oauth_client_secret="csecret-SECRET-9f3e")
    answers, client = details(settings(server.url), [f"r{i:07d}" for i in range(20)])
    stats = server.stats()
    assert len(answers) == 20 and stats["token"] == 1 and stats["unauthorized"] == 0
    assert client.redactor.text(f"x {client._bearer} y") == "x [redacted] y"  # the token is a secret too


def test_a_token_is_fetched_again_before_it_expires(sample_server):
    server = sample_server(
        resources=50, oauth_client_id="cid-42", oauth_client_secret="csecret-SECRET-9f3e", oauth_token_ttl=1.5
    )
    answers, _ = details(settings(server.url, refresh_before=0.5), [f"r{i:07d}" for i in range(12)], pause=0.25)
    stats = server.stats()
    assert len(answers) == 12 and stats["unauthorized"] == 0 and stats["token"] >= 3  # about every second


def test_a_token_refused_early_is_renewed_once_and_the_call_goes_on(sample_server):
    server = sample_server(
        resources=50,
        oauth_client_id="cid-42",
        oauth_client_secret="csecret-SECRET-9f3e",
        oauth_token_ttl=1.0,
        oauth_claimed_ttl=3600,  # it says an hour, and takes it back after a second
    )
    answers, _ = details(settings(server.url), [f"r{i:07d}" for i in range(8)], pause=0.3)
    stats = server.stats()
    assert len(answers) == 8 and stats["token"] >= 2 and stats["unauthorized"] >= 1
    assert stats["unauthorized"] == stats["token"] - 1  # one refusal a token, each renewed once


def test_a_refused_secret_stops_every_call_named_and_unseen(sample_server):
    server = sample_server(resources=50, oauth_client_id="cid-42", oauth_client_secret="csecret-SECRET-9f3e")
    with pytest.raises(ApiFailure) as caught:
        details(settings(server.url, secret="wrong-SECRET-0000"), ["r0000001"])
    message = str(caught.value)
    assert caught.value.kind == "auth_failed" and "SHOP_CLIENT_SECRET" in message
    assert "wrong-SECRET" not in message and "csecret" not in message
    assert server.stats()["detail"] == 0  # nothing sent to the API without a token
