"""Many sources in one code location, each a ``RestSource`` component declared by one YAML file:
its own assets under its name, its job, schedule, sensors and replay job, its own warehouse
namespace (rows of two sources with the same ids never meet), and sources on one API host
sharing one request budget. ``dg check defs`` validates a team's project and names its mistakes."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import textwrap
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa
from dagster import AssetKey, instance_for_test

from pipelines.definitions import build_defs
from pipelines.lookup import main as lookup_main
from pipelines.move_namespace import main as move_namespace_main
from pipelines.sample_api import SampleApiConfig, World
from pipelines.settings import Settings
from pipelines.source.declaration_file import load_declaration
from pipelines.sync import resources as resources_module
from pipelines.sync.budgets import BudgetConflictError, check_budgets
from pipelines.sync.resources import DeclaredSource, EmbeddedSample, HttpSource, WarehouseResource, declared_source
from pipelines_tests.helpers import SAMPLE_DECLARATION, dg_project, source_file, stored, truth

DG = str(Path(sys.executable).parent / "dg")
N = 300
SEEDS = {"eu": 7, "us": 8}  # one profile, two worlds: the same ids, different records


def sample_source(name: str, seed: int) -> str:
    """The shipped sample's defs.yaml, renamed and shrunk."""
    text = SAMPLE_DECLARATION.read_text()
    text = text.replace("name: sample", f"name: {name}")
    return text.replace(
        "resources: 30000, change_rate: 0.2, seed: 7", f"resources: {N}, change_rate: 0.2, seed: {seed}"
    )


@pytest.fixture
def two_sources(tmp_path, monkeypatch, request):
    module = f"team_{request.node.name.split('[')[-1].strip(']').replace('-', '_')}_sources"
    monkeypatch.syspath_prepend(str(tmp_path))
    return dg_project(tmp_path, module, {name: sample_source(name, seed) for name, seed in SEEDS.items()})


@pytest.mark.parametrize("warehouse", ["sqlite", "postgresql"])
def test_two_sources_sync_side_by_side_without_meeting(warehouse, two_sources, request, tmp_path, capsys):
    url = request.getfixturevalue(f"{'sqlite' if warehouse == 'sqlite' else 'pg'}_warehouse_url")
    defs = build_defs(Settings(warehouse_url=url), project=two_sources)
    graph = defs.resolve_asset_graph()
    stages = ("watchlist", "retry_queue", "job_set", "synced_resources", "dead_letter")
    assert set(graph.get_all_asset_keys()) == {AssetKey([s, a]) for s in SEEDS for a in stages}
    assert {g for k in graph.get_all_asset_keys() for g in [graph.get(k).group_name]} == set(SEEDS)
    for name in SEEDS:
        for sensor in ("completion_sensor", "run_failure_alert_sensor"):
            assert defs.resolve_sensor_def(f"{name}_{sensor}") is not None
        assert defs.resolve_schedule_def(f"{name}_daily_sync_schedule").job_name == f"{name}_daily_sync_job"

    assert {type(defs.resources[f"{n}_api"]) for n in SEEDS} == {EmbeddedSample}  # chosen by the declaration
    warehouse_resource = WarehouseResource(url=url)
    with instance_for_test() as instance:
        # us has not synced yet: its replay job finds no namespace, and says which
        replay_us = defs.resolve_job_def("us_replay_dead_letters").execute_in_process(
            run_config={"ops": {"us__replay_dead_letters_op": {"config": {"replay_all": True, "dry_run": True}}}},
            instance=instance,
            raise_on_error=False,
        )
        assert not replay_us.success
        assert "namespace us" in str(replay_us.failure_data_for_node("us__replay_dead_letters_op").error.message)

        runs: dict[str, set[str]] = {name: set() for name in SEEDS}
        for day in (1, 2):
            for name in SEEDS:
                result = defs.resolve_job_def(f"{name}_daily_sync_job").execute_in_process(
                    partition_key=date(2026, 1, day).isoformat(), instance=instance
                )
                assert result.success
                runs[name].add(result.run_id)
                figures = result.output_for_node(f"{name}__synced_resources")
                world = World(SampleApiConfig(resources=N, change_rate=0.2, seed=SEEDS[name]))
                live = truth("items", world, day)
                rows = stored(warehouse_resource.store(name))
                assert {rid: fp for rid, (status, fp) in rows.items() if status == "live"} == live
                changed = len(live) if day == 1 else sum(world.changed_on(rid, day) for rid in world.ids(day))
                assert figures["changed"] == changed  # each source's change detection is its own

        eu, us = (stored(warehouse_resource.store(n)) for n in SEEDS)
        shared = set(eu) & set(us)
        assert len(shared) >= N * 0.9  # the same ids in both...
        # ...where the two worlds' versions differ (about half of them), each namespace holds its own
        assert sum(eu[rid] != us[rid] for rid in shared) >= len(shared) // 4

        replay_eu = defs.resolve_job_def("eu_replay_dead_letters").execute_in_process(
            run_config={"ops": {"eu__replay_dead_letters_op": {"config": {"replay_all": True, "dry_run": True}}}},
            instance=instance,
        )
        assert replay_eu.success

    # the deployment's own namespace holds the steps' outputs (the IO manager's), no source's rows
    assert stored(warehouse_resource.store()) == {}
    if warehouse == "postgresql":
        with sa.create_engine(url).connect() as conn:
            assert set(SEEDS) <= set(sa.inspect(conn).get_schema_names())

    # lookup answers per source
    rid = sorted(shared)[0]
    for name in SEEDS:
        lookup_main([rid, "--warehouse", url, "--source", name])
        answer = json.loads(capsys.readouterr().out)
        assert [o["outcome"] for o in answer["outcomes"]][:1] == ["changed"]
        assert {o["run_id"] for o in answer["outcomes"]} <= runs[name]  # its own source's runs, both days
        assert len(answer["outcomes"]) == 2


def release_engines() -> None:
    """Forget this process's warehouse engines, as a stopped deployment holds none."""
    resources_module._store.cache_clear()
    gc.collect()  # and their pooled connections with them


def declared(tmp_path: Path, name: str, base_url: str, rate: float, budget: str | None = None) -> DeclaredSource:
    path = tmp_path / f"{name}-{rate:g}-{budget}.yaml"  # declarations are cached by path
    text = SAMPLE_DECLARATION.read_text().replace("name: sample", f"name: {name}")
    text = text.replace(
        "sample: {profile: items, resources: 30000, change_rate: 0.2, seed: 7}", f"base_url: {base_url}"
    )
    text = text.replace("requests_per_second: 0,", f"requests_per_second: {rate},")
    if budget:
        text = text.replace("max_concurrency: 16,", f"max_concurrency: 16, budget: {budget},")
    path.write_text(text)
    assert load_declaration(path).rate.requests_per_second == rate
    return declared_source(str(path))


def test_sources_on_one_host_share_a_budget_and_must_agree_on_its_rate(tmp_path, monkeypatch):
    monkeypatch.setenv("SOURCE_API_TOKEN", "tok")
    orders = declared(tmp_path, "orders", "https://api.acme.test/v1/orders", 50)
    products = declared(tmp_path, "products", "https://api.acme.test:443/v2", 20)
    with pytest.raises(BudgetConflictError) as refused:
        check_budgets({"orders_api": orders, "products_api": products})
    message = str(refused.value)
    assert "orders declares 50/s" in message and "products declares 20/s" in message
    assert "https://api.acme.test" in message
    # the same rate: one budget, accepted; the client names it by host
    check_budgets(
        {"orders_api": orders, "products_api": declared(tmp_path, "products", "https://api.acme.test/v2", 50)}
    )
    assert orders.client_settings().budget == "https://api.acme.test"
    # a budget of its own: no conflict
    own = declared(tmp_path, "search", "https://api.acme.test/search", 5, budget="acme_search")
    check_budgets({"orders_api": orders, "search_api": own})
    assert own.client_settings().budget == "acme_search"


def run_dg(args: list[str], project: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(project.parent), "DAGSTER_HOME": str(project.parent / "home")}
    (project.parent / "home").mkdir(exist_ok=True)
    return subprocess.run(
        [DG, *args],
        cwd=project.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_dg_checks_a_teams_project_and_lists_what_each_source_makes(tmp_path):
    shop = Path(__file__).resolve().parents[1] / "examples" / "sample_shop.yaml"
    text = "type: pipelines.components.RestSource\nattributes:\n" + textwrap.indent(shop.read_text(), "  ")
    project = dg_project(tmp_path, "acme_sources", {"shop": text})
    checked = run_dg(["check", "defs"], project)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    listed = run_dg(["list", "defs", "--json"], project)
    assert listed.returncode == 0, listed.stderr
    made = json.loads(listed.stdout[listed.stdout.index("{") :])
    assets = {a["asset_key"]: a for a in made["assets"]}
    assert set(assets) == {
        f"shop/{a}" for a in ("watchlist", "retry_queue", "job_set", "synced_resources", "dead_letter")
    }
    assert assets["shop/watchlist"]["source"].startswith("acme_sources/defs/shop/defs.yaml")  # where it is declared
    assert {j["name"] for j in made["jobs"]} == {"shop_daily_sync_job", "shop_replay_dead_letters"}
    assert {s["name"] for s in made["schedules"]} == {"shop_daily_sync_schedule"}
    assert {s["name"] for s in made["sensors"]} == {"shop_completion_sensor", "shop_run_failure_alert_sensor"}
    assert {"shop_api", "warehouse", "io_manager"} <= {r["name"] for r in made["resources"]}

    defs_yaml = project / "defs" / "shop" / "defs.yaml"
    lines = defs_yaml.read_text().splitlines()
    at = next(i for i, line in enumerate(lines) if line.strip().startswith("fingerprint:"))
    lines[at] = lines[at].replace("fingerprint:", "fingerprnt:")
    defs_yaml.write_text("\n".join(lines) + "\n")
    typo = run_dg(["check", "defs"], project)
    assert typo.returncode != 0
    said = typo.stdout + typo.stderr
    assert f"defs.yaml:{at + 1}" in said and "fingerprnt" in said

    # valid to the schema, wrong in meaning: the declaration's own check names key and line
    lines[at] = lines[at].replace("fingerprnt:", "fingerprint:")
    probe = next(i for i, line in enumerate(lines) if line.strip().startswith("strategy:"))
    lines[probe] = lines[probe].split("strategy:")[0] + "strategy: conditional"
    defs_yaml.write_text("\n".join(lines) + "\n")
    meaning = run_dg(["check", "defs"], project)
    assert meaning.returncode != 0
    said = meaning.stdout + meaning.stderr
    assert "defs.yaml" in said and "probe" in said and "conditional" in said, said[-3000:]


@pytest.mark.parametrize("warehouse", ["sqlite", "postgresql"])
def test_a_deployment_configured_by_environment_becomes_a_component_keeping_its_history(
    warehouse, request, sample_server, tmp_path, monkeypatch, capsys
):
    """Day 1 synced by a single-source deployment (SOURCE_DECLARATION: the names it always had); its
    tables moved into a namespace (``python -m pipelines.move_namespace``); day 2 synced by a
    component of the same API: no mismatch, nothing fetched again, day 2 costs only its changes."""
    url = request.getfixturevalue(f"{'sqlite' if warehouse == 'sqlite' else 'pg'}_warehouse_url")
    server = sample_server(resources=N, change_rate=0.25, seed=9, day=1)
    world = World(SampleApiConfig(resources=N, change_rate=0.25, seed=9))
    text = SAMPLE_DECLARATION.read_text().replace("name: sample", "name: acme")
    text = text.replace(
        "sample: {profile: items, resources: 30000, change_rate: 0.2, seed: 7}", f"base_url: {server.url}"
    )
    text = text.replace("auth: {type: bearer, token_env: SOURCE_API_TOKEN}", "auth: {type: none}")
    monkeypatch.syspath_prepend(str(tmp_path))
    project = dg_project(tmp_path, f"moved_{warehouse}_sources", {"acme": text})
    with instance_for_test() as instance:
        before = build_defs(Settings(source_declaration=str(source_file(server.url)), warehouse_url=url))
        day1 = before.resolve_job_def("daily_sync_job").execute_in_process(
            partition_key="2026-01-01", instance=instance
        )
        assert day1.success

        release_engines()  # the deployment is stopped before its tables move
        move_namespace_main(["acme", "--warehouse", url])
        assert "moved" in capsys.readouterr().out
        with pytest.raises(SystemExit):  # a second move would mix two histories: refused
            move_namespace_main(["acme", "--warehouse", url])
        assert "already holds" in capsys.readouterr().err

        server.configure(day=2)
        server.reset()
        after = build_defs(Settings(warehouse_url=url), project=project)
        assert type(after.resources["acme_api"]) is HttpSource
        day2 = after.resolve_job_def("acme_daily_sync_job").execute_in_process(
            partition_key="2026-01-02", instance=instance
        )
        assert day2.success
        figures = day2.output_for_node("acme__synced_resources")
    changed = sum(world.changed_on(rid, 2) for rid in world.ids(2))
    assert figures["changed"] == server.stats()["detail"] == changed and figures["new"] == 0
    assert figures["calls_made"] == N + changed  # the projected probes, and only the changed details
    assert {
        rid: fp for rid, (status, fp) in stored(WarehouseResource(url=url).store("acme")).items() if status == "live"
    } == truth("items", world, 2)
