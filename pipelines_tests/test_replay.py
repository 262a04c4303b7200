"""The replay job refuses bad input before it reads anything, naming the field."""

import pytest
from dagster import instance_for_test

from pipelines.sync.replay import replay_dead_letters
from pipelines.sync.resources import WarehouseResource
from pipelines.warehouse.store import Warehouse, create_warehouse_engine


def replay(url: str, **config):
    with instance_for_test() as instance:
        result = replay_dead_letters.execute_in_process(
            run_config={"ops": {"replay_dead_letters_op": {"config": config}}},
            resources={"warehouse": WarehouseResource(url=url)},
            instance=instance,
            raise_on_error=False,
        )
    errors = "\n".join(str(e.event_specific_data.error) for e in result.all_events if e.is_step_failure)
    return result, errors


@pytest.mark.parametrize(
    ("config", "named"),
    [
        ({"from_date": "2026-02-01", "to_date": "2026-01-01"}, "from_date (2026-02-01) is after to_date"),
        ({"error_classes": ["poision"]}, "error_classes"),
        ({"from_date": "01/02/2026"}, "from_date"),
        ({"due_on": "tomorrow"}, "due_on"),
        ({"ids": ["r0000042"]}, "ids"),
    ],
)
def test_bad_replay_input_is_refused_naming_the_field(sqlite_warehouse_url, config, named):
    Warehouse(create_warehouse_engine(sqlite_warehouse_url))
    result, errors = replay(sqlite_warehouse_url, **config)
    assert not result.success and named in errors


def test_a_replay_against_a_warehouse_that_is_not_there_creates_none(tmp_path):
    typo = tmp_path / "warehuose.db"
    result, errors = replay(f"sqlite:///{typo}", error_classes=["poison"])
    assert not result.success and "does not exist" in errors
    assert not typo.exists()
