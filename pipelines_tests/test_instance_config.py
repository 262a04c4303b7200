"""dagster.yaml is valid for Dagster's own schema, and says what the README says it does."""

from pathlib import Path

import yaml
from dagster._config import validate_config
from dagster._core.instance.config import dagster_instance_config_schema

ROOT = Path(__file__).resolve().parents[1]


def _validate(config: dict):
    return validate_config(dagster_instance_config_schema(), config)


def test_local_dagster_yaml_is_valid_and_retries_crashed_runs_only():
    config = yaml.safe_load((ROOT / "dagster.yaml").read_text())
    result = _validate(config)
    assert result.success, [e.message for e in result.errors]
    assert config["run_retries"] == {"enabled": True, "max_retries": 2, "retry_on_asset_or_op_failure": False}
    assert config["run_monitoring"]["enabled"] is True
    limits = config["concurrency"]["runs"]["tag_concurrency_limits"]
    assert {"key": "dagster/partition", "value": {"applyLimitPerUniqueValue": True}, "limit": 1} in limits


def test_the_schema_check_catches_mistakes():
    result = _validate({"run_retries": {"enabled": "yes", "retry_on_failure": True}})
    assert not result.success
    messages = " ".join(e.message for e in result.errors)
    assert "retry_on_failure" in messages and "enabled" in messages
