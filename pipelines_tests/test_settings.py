import subprocess
import sys

import pytest

from pipelines.settings import Settings, SettingsError, load_settings


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
