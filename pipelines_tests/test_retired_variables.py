"""The one-step migration of a flat-variable deployment: ``python -m pipelines.retired_variables``
writes the declaration that says what its variables said. Pure: no server, no Dagster."""

import pytest

from pipelines.retired_variables import MOVED, RETIRED, RetiredVariableError, declaration_from, main, retired_in
from pipelines.source.declaration_file import load_declaration

# A value for each retired variable, as an env file holds it, and the value its keys must hold.
VALUES = {
    "SOURCE_PROBE_STRATEGY": ("bulk", "bulk"),
    "SOURCE_PROBE_FIELDS": ("id, version,updated_at", ["id", "version", "updated_at"]),
    "SOURCE_FINGERPRINT_FIELDS": ("version", ["version"]),
    "SOURCE_ITEM_PATH": ("/v2/items/{id}", "/v2/items/{id}"),
    "SOURCE_DETAIL_PATH": ("/v2/items/{id}/full", "/v2/items/{id}/full"),
    "SOURCE_ITEMS_PATH": ("/v2/items", "/v2/items"),
    "SOURCE_CONNECT_TIMEOUT": ("3", 3.0),
    "SOURCE_READ_TIMEOUT": ("20", 20.0),
    "SOURCE_REQUEST_DEADLINE": ("45", 45.0),
    "SOURCE_MAX_RESPONSE_BYTES": ("2048", 2048),
    "SOURCE_MAX_ATTEMPTS": ("6", 6),
    "SOURCE_BREAKER_FAILURE_RATIO": ("0.7", 0.7),
    "SOURCE_BREAKER_MIN_CALLS": ("40", 40),
    "SOURCE_BREAKER_COOLDOWN": ("10", 10.0),
    "SOURCE_BREAKER_HOLD": ("90", 90.0),
    "SOURCE_MAX_CONCURRENCY": ("8", 8),
    "SOURCE_MIN_CONCURRENCY": ("1", 1),
    "SOURCE_RATE_LIMIT": ("150", 150.0),
    "SOURCE_RATE_LIMITER_KEY": ("acme", "acme"),
    "SAMPLE_API_RESOURCES": ("500", 500),
    "SAMPLE_API_CHANGE_RATE": ("0.1", 0.1),
    "SAMPLE_API_SEED": ("3", 3),
    "COST_PER_1000_REQUESTS": ("2.5", 2.5),
    "PIPELINE_START_DATE": ("2025-06-01", "2025-06-01"),
    "PIPELINE_TIMEZONE": ("Europe/Paris", "Europe/Paris"),
    "SCHEDULE_HOUR": ("6", "0 6 * * *"),  # the minute's default beside it
    "SCHEDULE_MINUTE": ("15", "15 1 * * *"),  # the hour's default beside it
    "SYNC_BATCH_SIZE": ("250", 250),
    "COMPLETION_DEADLINE": ("07:30", "07:30:00"),
    "COMPLETION_MIN_RATIO": ("0.9", 0.9),
    "COMPLETION_LOOKBACK_DAYS": ("3", 3),
    "WATCHLIST_CSV": ("/srv/ids.csv", "/srv/ids.csv"),
}


def test_every_retired_variable_has_a_case_here():
    assert set(VALUES) == set(MOVED)


@pytest.mark.parametrize("variable", sorted(MOVED))
def test_each_variable_lands_on_the_keys_that_say_it_now(variable):
    raw, expected = VALUES[variable]
    sample = variable.startswith("SAMPLE_API_")
    environ = {variable: raw} if sample else {variable: raw, "SOURCE_API_URL": "https://api.example/v1"}
    dumped = declaration_from(environ).model_dump(mode="json")
    for key in MOVED[variable]:
        node = dumped
        for part in key.split("."):
            node = node[part]
        assert node == expected, key


def test_the_url_token_and_proxy_stay_in_their_variables():
    environ = {
        "SOURCE_API_URL": "https://svc:pw-url-secret@api.example/v1",
        "SOURCE_API_TOKEN": "tok-never-written",
        "SOURCE_API_PROXY_URL": "http://u:pw-proxy@proxy:8080",
    }
    declared = declaration_from(environ)
    assert declared.client.base_url_env == "SOURCE_API_URL" and declared.client.base_url is None
    assert declared.client.auth.variables() == ["SOURCE_API_TOKEN"]
    assert declared.client.proxy_url_env == "SOURCE_API_PROXY_URL"
    text = declared.model_dump_json()
    assert not any(secret in text for secret in ("pw-url-secret", "tok-never-written", "pw-proxy"))
    # with none of them set: the embedded sample API, as before
    assert declaration_from({}).embedded and declaration_from({}).probe.strategy == "projected"


def test_the_schedule_webhook_and_watchlist_move_as_they_were_read(tmp_path, monkeypatch):
    """Hour and minute become one cron; the webhook URL (a secret) stays in its variable, read
    through operations.alerts.webhook_url_env; a relative CSV path, read from the working
    directory before, is written absolute (a declaration's relative path is read from its folder)."""
    monkeypatch.chdir(tmp_path)
    environ = {"SCHEDULE_HOUR": "5", "SCHEDULE_MINUTE": "45", "WATCHLIST_CSV": "ids.csv"}
    environ["ALERT_WEBHOOK_URL"] = "https://hooks.example/services/T000/B000/secret-path-xyz"
    declared = declaration_from(environ)
    assert declared.operations.schedule.cron == "45 5 * * *"
    assert declared.operations.alerts.webhook_url_env == "ALERT_WEBHOOK_URL"
    assert "ALERT_WEBHOOK_URL" in declared.variables()  # so it is read, not refused as retired
    assert "secret-path-xyz" not in declared.model_dump_json()
    assert declared.watchlist_csv == str(tmp_path / "ids.csv")
    with pytest.raises(RetiredVariableError, match=r"operations.schedule.cron \(SCHEDULE_HOUR, SCHEDULE_MINUTE\)"):
        declaration_from({"SCHEDULE_HOUR": "25"})


def test_a_bad_value_is_named_by_its_variable():
    with pytest.raises(RetiredVariableError, match=r"rate.max_concurrency \(SOURCE_MAX_CONCURRENCY\)"):
        declaration_from({"SOURCE_MAX_CONCURRENCY": "0"})
    with pytest.raises(RetiredVariableError, match=r"probe.fields \(SOURCE_PROBE_FIELDS\).*lacks version"):
        declaration_from({"SOURCE_PROBE_FIELDS": "id"})


def test_the_command_writes_a_declaration_that_loads_and_says_what_moved(tmp_path, monkeypatch, capsys):
    for name in RETIRED:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SOURCE_API_URL", "https://api.example/v1")
    monkeypatch.setenv("SOURCE_PROBE_STRATEGY", "conditional")
    monkeypatch.setenv("SOURCE_RATE_LIMIT", "40")
    out = tmp_path / "source.yaml"
    assert main(["--out", str(out), "--name", "acme"]) == 0
    said = capsys.readouterr().out
    assert f"set SOURCE_DECLARATION={out}" in said and "unset SOURCE_PROBE_STRATEGY, SOURCE_RATE_LIMIT" in said
    text = out.read_text()
    assert "# moved here: SOURCE_PROBE_STRATEGY" in text and "# moved here: SOURCE_API_URL" not in text
    declared = load_declaration(out)
    assert (declared.name, declared.probe.strategy, declared.rate.requests_per_second) == ("acme", "conditional", 40)
    assert retired_in({"SOURCE_API_URL": "x", "SOURCE_RATE_LIMIT": "40"}, declared.variables()) == ["SOURCE_RATE_LIMIT"]


def test_the_command_names_the_variable_of_a_bad_value_and_writes_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SOURCE_MAX_ATTEMPTS", "99")
    out = tmp_path / "source.yaml"
    assert main(["--out", str(out)]) == 1
    assert "SOURCE_MAX_ATTEMPTS" in capsys.readouterr().err and not out.exists()
