import os
import subprocess
import sys
import warnings

import pytest

from pipelines.retired_variables import check_environment
from pipelines.settings import (
    Settings,
    SettingsError,
    SettingsWarning,
    load_settings,
    unknown_variables,
)
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
    assert settings.source_declaration is None  # the components under pipelines/defs/: the sample's
    assert settings.warehouse_url.startswith("sqlite:///")
    assert settings.sync_batch_parallelism == 8


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SYNC_BATCH_PARALLELISM", "0"),
        ("SYNC_BATCH_PARALLELISM", "many"),
        ("WAREHOUSE_URL", "mysql://x"),
        ("SOURCE_RATE_LIMITER_URL", "http://127.0.0.1:6379"),
        ("SYNC_EXECUTOR", "threads"),
        ("SYNC_CELERY_BROKER_URL", "http://127.0.0.1:6379"),
        ("SYNC_CELERY_BACKEND_URL", "mongodb://x"),
        ("SYNC_CELERY_VISIBILITY_TIMEOUT", "5"),
        ("SYNC_K8S_MAX_CONCURRENT", "0"),
        ("SYNC_EVENT_LOOP", "trio"),
        ("SOURCE_DECLARATION", "/nowhere/source.yaml"),
        # values that overflow later (timedelta, sleeps) are refused now
        ("SYNC_CLAIM_LEASE_SECONDS", "1e12"),
        ("SYNC_SYSTEMIC_FAILURE_RATIO", "1.5"),
    ],
)
def test_a_bad_setting_is_named(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match=name):
        load_settings()


def test_empty_optional_settings_are_unset(monkeypatch):
    monkeypatch.setenv("SOURCE_RATE_LIMITER_URL", "")
    monkeypatch.setenv("SYNC_CELERY_BACKEND_URL", "")
    settings = load_settings()
    assert (settings.sync_celery_backend_url, settings.source_rate_limiter_url) == (None, None)


def test_an_unknown_variable_is_warned_about_with_the_closest_name(monkeypatch):
    monkeypatch.setenv("SOURCE_DECLARATIONS", "x.yaml")  # a typo: one S too many
    monkeypatch.setenv("SYNC_BATCH_PARALELISM", "4")
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "0")  # someone else's, never warned about
    monkeypatch.setenv("SOURCE_API_TOKEN", "tok")  # the sample's declaration reads it
    found = unknown_variables(os.environ, {"SOURCE_API_TOKEN"})
    assert found["SOURCE_DECLARATIONS"] == "SOURCE_DECLARATION"
    assert found["SYNC_BATCH_PARALELISM"] == "SYNC_BATCH_PARALLELISM"
    assert "SOURCE_DATE_EPOCH" not in found and "SOURCE_API_TOKEN" not in found
    assert "SOURCE_API_TOKEN" in unknown_variables(os.environ)  # read by no source: nothing reads it
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_environment(os.environ, {"SOURCE_API_TOKEN"})
    said = [str(w.message) for w in caught if issubclass(w.category, SettingsWarning)]
    assert any("SOURCE_DECLARATIONS is set" in m and "did you mean SOURCE_DECLARATION?" in m for m in said)


def test_a_declaration_with_a_mistake_stops_the_load_naming_its_line_and_key(monkeypatch, tmp_path):
    bad = tmp_path / "api.yaml"
    bad.write_text((ROOT / "examples/sample_shop.yaml").read_text().replace("max_ids: 250", "max_ids: lots"))
    monkeypatch.setenv("SOURCE_DECLARATION", str(bad))
    with pytest.raises(SettingsError, match=r"(?s)SOURCE_DECLARATION: .*api.yaml.*line \d+: bulk_probe.max_ids"):
        load_settings()


def test_a_retired_variable_stops_the_load_naming_the_command_that_moves_it(monkeypatch):
    monkeypatch.setenv("SOURCE_API_URL", "https://api.example")
    monkeypatch.setenv("SOURCE_PROBE_STRATEGY", "bulk")
    with pytest.raises(SettingsError, match="SOURCE_API_URL, SOURCE_PROBE_STRATEGY: retired") as info:
        check_environment(os.environ)
    assert "python -m pipelines.retired_variables --out source.yaml" in str(info.value)
    # a declaration written by that command reads the URL from its variable: only the strategy is refused
    with pytest.raises(SettingsError, match=r"^SOURCE_PROBE_STRATEGY: retired"):
        check_environment(os.environ, {"SOURCE_API_URL"})
    monkeypatch.delenv("SOURCE_PROBE_STRATEGY")
    check_environment(os.environ, {"SOURCE_API_URL"})


@pytest.mark.parametrize(
    ("env", "said"),
    [
        ({"SYNC_BATCH_PARALLELISM": "-5"}, ["SYNC_BATCH_PARALLELISM"]),
        ({"SOURCE_PROBE_STRATEGY": "bulk"}, ["SOURCE_PROBE_STRATEGY: retired", "pipelines.retired_variables"]),
        ({"SYNC_BATCH_SIZE": "10"}, ["SYNC_BATCH_SIZE: retired", "pipelines.retired_variables"]),
        ({"SCHEDULE_HOUR": "6"}, ["SCHEDULE_HOUR: retired", "pipelines.retired_variables"]),
    ],
)
def test_the_code_location_refuses_to_load_with_a_bad_or_retired_setting(env, said):
    proc = subprocess.run(
        [sys.executable, "-c", "from pipelines.definitions import defs; defs()"],
        env={**env, "PATH": ""},
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert proc.returncode != 0
    assert all(words in proc.stderr for words in said), proc.stderr[-2000:]


def test_nothing_reads_the_settings_at_import():
    """Every module of the code location imports under a bad setting: the settings are read when
    the code location is built (``defs()``, as Dagster loads it) and when a step runs."""
    modules = "pipelines.definitions, pipelines.components, " + ", ".join(
        f"pipelines.sync.{m}"
        for m in ("assets", "synced_resources", "sensors", "schedules", "checks", "partitions", "source_defs", "stops")
    )
    proc = subprocess.run(
        [sys.executable, "-c", f"import {modules}"],
        env={"SYNC_BATCH_PARALLELISM": "-5", "PATH": ""},
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
