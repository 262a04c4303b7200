"""The failure model end to end, against the sample API on a real loopback port."""

import json
import logging
import time
from datetime import date

import pytest
import sqlalchemy as sa
from dagster import DagsterEventType, instance_for_test, materialize

from pipelines.sample_api import SampleApiConfig, World
from pipelines.sample_api.shop import shop_id
from pipelines.source.declaration_file import load_declaration
from pipelines.sync.assets import job_set, retry_queue, watchlist
from pipelines.sync.checks import sync_checks
from pipelines.sync.dead_letter import dead_letter
from pipelines.sync.replay import replay_dead_letters
from pipelines.sync.resources import DeclaredSource, WarehouseResource, _store, declared_source
from pipelines.sync.synced_resources import synced_resources
from pipelines.warehouse.schema import resources as resources_table
from pipelines_tests.helpers import BEARER, PROFILES, FlakyTcpProxy, api_resource, declaration_at, sync_resources, truth

ASSETS = [watchlist, retry_queue, job_set, synced_resources, dead_letter, *sync_checks]
DAYS = ["2026-01-01", "2026-01-02", "2026-01-03"]
TOKEN = "tok-faults"
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def run_day(res, partition, instance, raise_on_error=True):
    result = materialize(
        ASSETS,
        partition_key=partition,
        resources=res,
        instance=instance,
        run_config=QUIET,
        raise_on_error=raise_on_error,
    )
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    return result, checks


def profile_source(profile, server_url, tmp_path, monkeypatch, **changes) -> DeclaredSource:
    """The profile's YAML pointed at the loopback server, with its token set."""
    declared = load_declaration(PROFILES[profile])
    monkeypatch.setenv(declared.client.auth.token_env, TOKEN)
    return declared_source(str(declaration_at(PROFILES[profile], server_url, tmp_path, changes)))


def source_id(profile: str):
    """How the profile spells a world id (the shop's are numeric)."""
    return (lambda rid: rid) if profile == "items" else (lambda rid: str(shop_id(rid)))


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_three_days_of_faults_lose_nothing(profile, sample_server, pg_warehouse_url, tmp_path, monkeypatch):
    # 429s must happen: the shop's bulk probes make a day a third the calls, so its API's rate is lower
    rate = 200 if profile == "items" else 80
    knobs = dict(resources=600, change_rate=0.2, transient_rate=0.1, poison_rate=0.01, rate_limit=rate, seed=21)
    world = World(SampleApiConfig(**knobs))
    server = sample_server(**knobs, day=1, token=TOKEN)
    api = profile_source(profile, server.url, tmp_path, monkeypatch, **{"client.retries.max_attempts": 2})
    res = {"source_api": api, "warehouse": WarehouseResource(url=pg_warehouse_url)}
    store = res["warehouse"].store()
    sid = source_id(profile)
    outcomes: dict[str, dict[str, str]] = {}
    with instance_for_test() as instance:
        for n, day in enumerate(DAYS, start=1):
            server.configure(day=n)
            result, checks = run_day(res, day, instance, raise_on_error=False)
            assert checks["conservation"].passed, checks["conservation"].metadata
            summary = result.output_for_node("synced_resources")
            assert summary["batches_completed"] == summary["batches_expected"]
            outcomes[day] = store.reports.outcomes_of(date.fromisoformat(day))
    stats = server.stats()
    assert stats["throttled"] > 0 and stats["transient"] > 0  # the faults really happened

    poison = {sid(rid) for rid in world.ids(1) if world.is_poison(rid)}
    assert poison
    dead = {e["resource_id"]: e for e in store.queues.dead_letters()}
    for rid in poison:  # dead-lettered on the first poison answer: never retried, never synced again
        history = dead[rid]["history"]
        assert dead[rid]["error_class"] == history[-1]["error_class"] == "poison"
        assert [h["error_class"] for h in history].count("poison") == 1  # earlier entries: transient probes
        dead_on = dead[rid]["partition"].isoformat()
        assert all(rid not in outcomes[d] for d in DAYS if d > dead_on)

    retried = {rid for rid, o in outcomes[DAYS[0]].items() if o == "retry"}
    assert retried, "10% transient faults with 2 attempts should send some sub-jobs to tier 2"
    recovered = {rid for rid in retried if outcomes[DAYS[1]].get(rid) in ("changed", "unchanged")}
    assert len(recovered) >= 0.8 * len(retried)
    for rid in retried:  # each came back the next day, with exactly one outcome there
        assert rid in outcomes[DAYS[1]]

    with store.engine.connect() as conn:
        stored = {r.resource_id: r for r in conn.execute(sa.select(resources_table))}
    synced_on_3 = [rid for rid, o in outcomes[DAYS[2]].items() if o in ("changed", "unchanged")]
    assert len(synced_on_3) > 500
    live = truth(profile, world, 3)
    for rid in synced_on_3:  # the warehouse holds the API's truth for every synced id
        assert stored[rid].fingerprint == live[rid]
    if profile == "items":
        assert all(stored[rid].details == world.record(rid, 3) for rid in synced_on_3)


def test_the_circuit_breaker_stops_calls_and_queues_the_sub_jobs(sample_server, sqlite_warehouse_url):
    server = sample_server(resources=600, day=1)
    api = api_resource(
        server.url,
        {
            "client.retries.max_attempts": 3,
            "client.breaker.min_calls": 20,
            "client.breaker.cooldown": 0.5,
            "client.breaker.hold": 1.0,
        },
    )
    res = {"source_api": api, "warehouse": WarehouseResource(url=sqlite_warehouse_url)}
    with instance_for_test() as instance:
        materialize(ASSETS[:3], partition_key=DAYS[0], resources=res, instance=instance, run_config=QUIET)
        server.configure(transient_rate=1.0)  # the API goes down
        server.reset()
        _, checks = run_day(res, DAYS[0], instance)  # the watchlist keeps what it tracks
        calls_down = server.stats()["billable"] - server.stats()["listing"]
        outcome = checks["conservation"].metadata
        server.configure(day=2, transient_rate=0.0)  # the API is back
        result, _ = run_day(res, DAYS[1], instance)
    assert outcome["retry"].value == 600 and outcome["dead"].value == 0  # queued, not burnt, not dead
    assert calls_down < 250  # without the breaker: 600 sub-jobs x 3 attempts = 1,800 calls
    # every batch completed, yet nothing synced: the day does not pass green
    assert not checks["synced_share"].passed and checks["synced_share"].metadata["synced"].value == 0
    day2 = result.output_for_node("synced_resources")
    assert day2["changed"] == 600 and day2["retry"] == 0  # all of them came back and synced


def test_a_warehouse_outage_of_a_minute_mid_sync_is_ridden_out_and_no_call_is_made_twice(
    sample_server, pg_warehouse_url
):
    """PostgreSQL unreachable for 65 s (every connection cut, new ones refused) as a batch is
    written: the step waits it out in place (no step retry, which would spend the batches' calls
    again), and the day completes with every sub-job fetched once."""
    target = sa.engine.make_url(pg_warehouse_url)
    proxy = FlakyTcpProxy(target.port or 5432, target.host or "127.0.0.1")
    url = target.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    server = sample_server(resources=500, day=1)
    res = sync_resources(url, server.url)
    try:
        with instance_for_test() as instance:
            materialize(ASSETS[:3], partition_key=DAYS[0], resources=res, instance=instance, run_config=QUIET)
            server.reset()
            proxy.cut_on(b"INSERT INTO resources ", refuse_for=65.0, every_connection=True)
            started = time.monotonic()
            result = materialize(
                ASSETS,
                partition_key=DAYS[0],
                resources=res,
                instance=instance,
                run_config=QUIET,
                selection=[synced_resources, dead_letter],
            )
            took = time.monotonic() - started
    finally:
        proxy.close()
    assert proxy.cuts == 1 and took >= 65  # the outage happened, and lasted
    assert not [e for e in result.all_events if e.event_type is DagsterEventType.STEP_UP_FOR_RETRY]
    summary = result.output_for_node("synced_resources")
    assert summary["batches_completed"] == 5 and summary["changed"] == 500
    assert (server.stats()["probe"], server.stats()["detail"]) == (500, 500)  # no call made twice
    assert next(e for e in result.get_asset_check_evaluations() if e.check_name == "conservation").passed
    _store.cache_clear()  # its engine points at the closed proxy


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_replay_job_dry_run_then_replay(profile, sample_server, sqlite_warehouse_url, tmp_path, monkeypatch):
    server = sample_server(resources=400, poison_rate=0.02, seed=8, day=1, token=TOKEN)
    res = {
        "source_api": profile_source(profile, server.url, tmp_path, monkeypatch),
        "warehouse": WarehouseResource(url=sqlite_warehouse_url),
    }
    store = res["warehouse"].store()
    with instance_for_test() as instance:
        run_day(res, DAYS[0], instance, raise_on_error=False)
        poisoned = store.queues.dead_letters()
        assert poisoned and {e["error_class"] for e in poisoned} == {"poison"}
        target = poisoned[0]["id"]

        def replay(**config):
            result = replay_dead_letters.execute_in_process(
                run_config={"ops": {"replay_dead_letters_op": {"config": config}}},
                resources={"warehouse": res["warehouse"]},
                instance=instance,
            )
            return result.output_for_node("replay_dead_letters_op"), result

        replayed, result = replay(ids=[target], dry_run=True)
        assert replayed == 0 and store.queues.dead_letters()[0]["status"] == "dead"
        md = result.get_step_success_events()[0]
        assert md is not None
        with pytest.raises(Exception, match="name ids"):
            replay()  # refuses to replay everything by accident
        assert replay(ids=[target], due_on=DAYS[1])[0] == 1
        server.configure(day=2)
        run_day(res, DAYS[1], instance, raise_on_error=False)
    entries = {e["id"]: e for e in store.queues.dead_letters()}
    assert entries[target]["status"] == "failed_again"  # poison stays poison...
    again = entries[entries[target]["resolved_by"]]
    assert [h["partition"] for h in again["history"]] == [DAYS[0], DAYS[1]]  # ...with its history kept


def test_the_token_is_nowhere(sample_server, sqlite_warehouse_url, monkeypatch, caplog, capfd):
    token = "tok-3f9a-very-secret"
    monkeypatch.setenv("SOURCE_API_TOKEN", token)
    server = sample_server(resources=300, token=token, poison_rate=0.03, transient_rate=0.05, seed=4, day=1)
    api = api_resource(server.url, {"client.auth": BEARER, "client.retries.max_attempts": 1})
    res = {"source_api": api, "warehouse": WarehouseResource(url=sqlite_warehouse_url)}
    caplog.set_level(logging.DEBUG)
    with instance_for_test() as instance:
        materialize(ASSETS, partition_key=DAYS[0], resources=res, instance=instance, raise_on_error=False)
        events = instance.all_logs(instance.get_runs()[0].run_id)
    assert server.stats().get("unauthorized", 0) == 0  # the token was used
    store = res["warehouse"].store()
    dead = store.queues.dead_letters()
    assert dead  # there is something to leak through
    assert all({k.lower(): v for k, v in e["request_headers"].items()}["authorization"] == "[redacted]" for e in dead)
    out, err = capfd.readouterr()
    haystacks = {
        "event log": "\n".join(str(e) for e in events),
        "dead letter": json.dumps(dead, default=str),
        "outcomes": json.dumps([store.reports.outcome_history(e["resource_id"]) for e in dead], default=str),
        "logs": caplog.text + out + err,
    }
    for where, text in haystacks.items():
        assert token not in text, f"the token leaked into the {where}"


def test_too_much_dead_lettered_fails_the_run_through_its_blocking_check(sample_server, sqlite_warehouse_url):
    """dead_letter_rate is blocking: a day above DEAD_LETTER_MAX_RATE (2%) fails its run, and the
    other checks of the same step still report."""
    server = sample_server(resources=300, poison_rate=0.1, seed=8, day=1)
    res = sync_resources(sqlite_warehouse_url, server.url)
    with instance_for_test() as instance:
        result, checks = run_day(res, DAYS[0], instance, raise_on_error=False)
    assert not result.success
    assert not checks["dead_letter_rate"].passed and checks["dead_letter_rate"].metadata["rate"].value > 0.02
    assert checks["conservation"].passed  # nothing lost: the poison is in the dead letter
