import subprocess
import sys
import warnings

import pytest

from pipelines.settings import Settings, SettingsError, SettingsWarning, load_settings, unknown_variables
from pipelines_tests.helpers import ROOT


@pytest.fixture(autouse=True)
def fresh_settings():
    load_settings.cache_clear()
    yield
    load_settings.cache_clear()


def test_defaults_need_no_environment(monkeypatch):
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    settings = load_settings()
    assert settings.source_api_url is None  # the embedded sample API
    assert settings.warehouse_url.startswith("sqlite:///")
    assert settings.sync_batch_size == 100


def test_lists_come_comma_separated(monkeypatch):
    monkeypatch.setenv("SOURCE_FINGERPRINT_FIELDS", "version, updated_at")
    assert load_settings().source_fingerprint_fields == ["version", "updated_at"]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SYNC_BATCH_SIZE", "0"),
        ("SYNC_BATCH_SIZE", "many"),
        ("SOURCE_PROBE_STRATEGY", "psychic"),
        ("SOURCE_ITEM_PATH", "/items"),
        ("WAREHOUSE_URL", "mysql://x"),
        ("SOURCE_FINGERPRINT_FIELDS", " , "),
        ("PIPELINE_START_DATE", "yesterday"),
        ("SOURCE_RATE_LIMITER_URL", "http://127.0.0.1:6379"),
        ("SOURCE_RATE_LIMIT", "-1"),
        ("SYNC_EXECUTOR", "threads"),
        ("SYNC_CELERY_BROKER_URL", "http://127.0.0.1:6379"),
        ("SYNC_CELERY_BACKEND_URL", "mongodb://x"),
        ("SYNC_CELERY_VISIBILITY_TIMEOUT", "5"),
        ("SYNC_K8S_MAX_CONCURRENT", "0"),
        ("SYNC_EVENT_LOOP", "trio"),
        # set but empty: would silently sync the embedded sample API into the configured warehouse
        ("SOURCE_API_URL", ""),
        ("SOURCE_API_URL", "   "),
        ("SOURCE_API_URL", "api.example.com/v1"),
        # values that overflow later (timedelta, sleeps) are refused now
        ("SYNC_CLAIM_LEASE_SECONDS", "1e12"),
        ("SOURCE_BREAKER_HOLD", "1e12"),
        ("SOURCE_READ_TIMEOUT", "inf"),
        ("SOURCE_RATE_LIMIT", "nan"),
        ("SOURCE_REQUEST_DEADLINE", "0"),
        ("SOURCE_MAX_RESPONSE_BYTES", "10"),
        # placeholders nobody fills
        ("SOURCE_ITEM_PATH", "/items/{ids}"),
        ("SOURCE_DETAIL_PATH", "/items/{id}/{tenant}"),
        ("SOURCE_ITEM_PATH", "/items/{id!r}"),
        ("SOURCE_ITEMS_PATH", "/items/{id}"),
        ("SOURCE_ITEM_PATH", "items/{id}"),
        ("SYNC_SYSTEMIC_FAILURE_RATIO", "1.5"),
    ],
)
def test_a_bad_setting_is_named(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match=name):
        load_settings()


def test_concurrency_bounds_must_be_in_order(monkeypatch):
    monkeypatch.setenv("SOURCE_MAX_CONCURRENCY", "4")
    monkeypatch.setenv("SOURCE_MIN_CONCURRENCY", "8")
    with pytest.raises(SettingsError, match="SOURCE_MIN_CONCURRENCY"):
        load_settings()


def test_the_code_location_refuses_to_load_with_a_bad_setting():
    proc = subprocess.run(
        [sys.executable, "-c", "import pipelines.definitions"],
        env={"SYNC_BATCH_SIZE": "-5", "PATH": ""},
        capture_output=True,
        text=True,
    )
    assert proc.returncode != 0
    assert "SYNC_BATCH_SIZE" in proc.stderr


def test_the_token_is_never_shown(monkeypatch):
    monkeypatch.setenv("SOURCE_API_TOKEN", "tok-123-secret")
    settings = load_settings()
    assert "tok-123-secret" not in repr(settings)
    assert settings.source_api_token.get_secret_value() == "tok-123-secret"


@pytest.mark.parametrize(
    ("fields", "fingerprint", "missing"),
    [("version,updated_at", "version", "id"), ("id,version", "versoin", "versoin"), ("id", "version", "version")],
)
def test_the_probe_must_bring_the_id_and_the_fingerprint(monkeypatch, fields, fingerprint, missing):
    monkeypatch.setenv("SOURCE_PROBE_FIELDS", fields)
    monkeypatch.setenv("SOURCE_FINGERPRINT_FIELDS", fingerprint)
    with pytest.raises(SettingsError, match=f"SOURCE_PROBE_FIELDS .* lacks {missing}"):
        load_settings()


@pytest.mark.parametrize("token", ["tok with space", "tok\nnewline", "tok\x7fdel", "tok\ttab", "tökén", " leading"])
def test_a_token_no_header_can_carry_is_refused_without_being_shown(monkeypatch, token):
    monkeypatch.setenv("SOURCE_API_TOKEN", token)
    with pytest.raises(SettingsError, match="SOURCE_API_TOKEN") as info:
        load_settings()
    assert token not in str(info.value) and token.strip() not in str(info.value)


def test_empty_optional_credentials_are_unset(monkeypatch):
    for name in ("SOURCE_API_TOKEN", "SOURCE_API_PROXY_URL", "ALERT_WEBHOOK_URL"):
        monkeypatch.setenv(name, "")
    settings = load_settings()
    assert (settings.source_api_token, settings.source_api_proxy_url, settings.alert_webhook_url) == (None, None, None)


def test_an_unknown_variable_is_warned_about_with_the_closest_name(monkeypatch):
    monkeypatch.setenv("SOURCE_FINGERPRINT_FIELD", "version")  # a typo: the S is missing
    monkeypatch.setenv("SYNC_BATCHSIZE", "50")
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "0")  # someone else's, never warned about
    found = unknown_variables(__import__("os").environ)
    assert found["SOURCE_FINGERPRINT_FIELD"] == "SOURCE_FINGERPRINT_FIELDS"
    assert found["SYNC_BATCHSIZE"] == "SYNC_BATCH_SIZE"
    assert "SOURCE_DATE_EPOCH" not in found
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load_settings()
    said = [str(w.message) for w in caught if issubclass(w.category, SettingsWarning)]
    assert any("SOURCE_FINGERPRINT_FIELD is set" in m and "did you mean SOURCE_FINGERPRINT_FIELDS" in m for m in said)


def test_a_declaration_with_a_mistake_stops_the_load_naming_its_line_and_key(monkeypatch, tmp_path):
    bad = tmp_path / "api.yaml"
    bad.write_text((ROOT / "examples/sample_shop.yaml").read_text().replace("max_ids: 250", "max_ids: lots"))
    monkeypatch.setenv("SOURCE_DECLARATION", str(bad))
    with pytest.raises(SettingsError, match=r"(?s)SOURCE_DECLARATION: .*api.yaml.*line \d+: bulk_probe.max_ids"):
        load_settings()


def test_a_declaration_is_the_one_place_for_what_it_says(monkeypatch):
    monkeypatch.setenv("SOURCE_DECLARATION", str(ROOT / "examples/sample_shop.yaml"))
    monkeypatch.setenv("SOURCE_API_URL", "https://api.example")
    monkeypatch.setenv("SOURCE_PROBE_STRATEGY", "bulk")
    with pytest.raises(SettingsError, match="SOURCE_API_URL, SOURCE_PROBE_STRATEGY: the declaration says"):
        load_settings()
    monkeypatch.delenv("SOURCE_API_URL")
    monkeypatch.delenv("SOURCE_PROBE_STRATEGY")
    assert load_settings().source_declaration.endswith("sample_shop.yaml")


def test_an_unset_older_variable_takes_the_declarations_default_which_the_settings_show():
    """One place for each default: the declaration schema's. A variable left unset never reaches
    the source (only the ones set do), and the default Settings shows for it (docs/settings.md)
    is the declaration's, so the two cannot drift apart."""
    from pipelines.source.flat import FLAT_KEYS, declaration_from_flat

    assert Settings(source_api_url="http://api.example").flat_source_settings() == {}
    dumped = {
        "http": declaration_from_flat("http://api.example", {}).model_dump(mode="json"),
        "sample": declaration_from_flat(None, {}).model_dump(mode="json"),
    }
    checked = 0
    for field, info in Settings.model_fields.items():
        name = field.removeprefix("source_").replace("sample_api_", "sample_")
        if name not in FLAT_KEYS:
            continue
        for key in FLAT_KEYS[name]:
            node = dumped["sample" if name.startswith("sample_") else "http"]
            for part in key.split("."):
                node = node[part]
            assert node == info.default, f"{field.upper()}: Settings says {info.default!r}, the declaration {node!r}"
            checked += 1
    assert checked >= 25
