"""The day on Celery workers (SYNC_EXECUTOR=celery), with the machine's Redis as broker and result
backend, and the same guarantees as on one process.

Everything is real: ``celery -A pipelines.workers worker`` nodes started here, a ``dagster job
execute`` run submitting its steps to them, the sample API as a server on loopback (its own rate
limit, counting every call), the Dagster instance and the warehouse in PostgreSQL. Steps hand each
other values through the warehouse IO manager; nothing crosses a step in memory.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import pytest
import redis
import sqlalchemy as sa
from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus

from pipelines.bench.celery_workers import start_workers
from pipelines.bench.runs import server_rate
from pipelines.warehouse.schema import batch_ledger, dead_letter, resources, step_outputs, sub_job_outcomes
from pipelines_tests.helpers import ROOT, dagster_home_on_postgres, postgres_database, source_env, sync_resources

DAY = "2026-01-05"
N = 1_200
RATE = 100.0  # the API's R, enforced by the sample server with 429s
REDIS_URL = "redis://127.0.0.1:6379/11"  # a database of its own, emptied before each test


@pytest.fixture
def celery_env(sample_server, pg_warehouse_url, tmp_path, monkeypatch):
    """A sample API at R, a Dagster instance on PostgreSQL, and the environment workers and runs share."""
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.flushdb()
    except redis.ConnectionError as exc:
        raise RuntimeError(f"Redis is required here and is not reachable at {REDIS_URL}: {exc}") from exc
    server = sample_server(resources=N, latency_ms=20, latency_jitter_ms=10, rate_limit=RATE, day=1)
    with postgres_database("pipelines_dagster") as instance_url:
        home = dagster_home_on_postgres(tmp_path / "home", instance_url)
        monkeypatch.setenv("DAGSTER_HOME", str(home))
        env = {
            "DAGSTER_HOME": str(home),
            **source_env(server.url, {"rate.requests_per_second": RATE, "rate.budget": "celery-test"}),
            "WAREHOUSE_URL": pg_warehouse_url,
            "SYNC_EXECUTOR": "celery",
            "SYNC_CELERY_BROKER_URL": REDIS_URL,
            "SOURCE_RATE_LIMITER_URL": REDIS_URL,
            "SYNC_BATCHES_PER_STEP": "1",  # a step per batch: 20 steps for the workers to share
            "SYNC_CLAIM_LEASE_SECONDS": "5",
        }
        yield server, sync_resources(pg_warehouse_url)["warehouse"].store(), env
    client.flushdb()


def run_day(env: dict, log: Path, config: dict | None = None) -> subprocess.Popen:
    """The day's job as a real run process; its executor submits every step to the workers."""
    args = [str(Path(sys.executable).parent / "dagster"), "job", "execute", "-m", "pipelines.definitions",
            "-j", "daily_sync_job", "--tags", json.dumps({"dagster/partition": DAY})]  # fmt: skip
    if config:
        path = log.with_suffix(".yaml")
        path.write_text(json.dumps(config))
        args += ["-c", str(path)]
    return subprocess.Popen(args, cwd=ROOT, env={**os.environ, **env}, stdout=log.open("wb"), stderr=subprocess.STDOUT)


def finish(run: subprocess.Popen, log: Path, timeout: float = 300) -> None:
    assert run.wait(timeout=timeout) == 0, log.read_text(errors="replace")[-4000:]


def steps_by_worker(instance: DagsterInstance, run_id: str) -> list[tuple[str, str]]:
    """(step key, worker node) of every step execution a worker started, in order."""
    started = []
    for entry in instance.all_logs(run_id, of_type=DagsterEventType.ENGINE_EVENT):
        event = entry.dagster_event
        worker = event.engine_event_data.metadata.get("Celery worker")
        if worker is not None:
            started.append((event.step_key, str(worker.value).split("@")[0]))
    return started


def fetched(server) -> tuple[int, int]:
    """Probes and detail calls the server answered since its last reset."""
    stats = server.stats()
    return stats.get("probe", 0), stats.get("detail", 0)


def only_run(instance: DagsterInstance):
    (run,) = instance.get_runs(limit=2)
    return run


def assert_day_whole(store) -> None:
    """Conservation, and nothing lost or duplicated: one outcome and one resource row per sub-job,
    every batch completed once, by one owner."""
    c = store.reports.conservation(date.fromisoformat(DAY))
    assert c["sub_jobs"] == N
    assert (c["without_outcome"], c["outcomes_without_sub_job"], c["unknown_outcomes"]) == (0, 0, 0)
    assert store.reports.count(sub_job_outcomes) == store.reports.count(resources) == N
    assert store.reports.count(dead_letter) == 0
    with store.engine.connect() as conn:
        ledger = conn.execute(sa.select(batch_ledger.c.batch_no, batch_ledger.c.status, batch_ledger.c.sub_jobs)).all()
    assert sorted(no for no, _, _ in ledger) == list(range(N // 100))
    assert {status for _, status, _ in ledger} == {"completed"}
    assert sum(n for _, _, n in ledger) == N


def test_a_day_on_two_celery_workers_keeps_every_guarantee(celery_env, tmp_path):
    server, store, env = celery_env
    workers = start_workers(2, env, tmp_path, concurrency=2)  # four worker processes
    try:
        server.reset()
        finish(run_day(env, tmp_path / "run1.log"), tmp_path / "run1.log")
        stats, timeline = server.stats(), server.timeline()
        instance = DagsterInstance.get()
        run = only_run(instance)
        assert run.status == DagsterRunStatus.SUCCESS

        # the steps ran on both nodes, every batch step on exactly one of them
        started = steps_by_worker(instance, run.run_id)
        batch_steps = [key for key, _ in started if "sync_batches[" in key]
        assert len(batch_steps) == len(set(batch_steps)) == N // 100
        assert {worker for _, worker in started} == {"w1", "w2"}

        # one batch, one owner: every sub-job fetched exactly once (day 1: probe and detail each)
        assert (stats["probe"], stats["detail"]) == (N, N)
        assert_day_whole(store)
        # the shared rate: the server saw at most 1.05 R with both nodes busy
        rate = server_rate(timeline)
        assert rate["server_rate_peak5"] <= 1.05 * RATE, rate
        assert rate["server_rate_mean"] >= 0.6 * RATE, rate  # and the workers kept it busy
        assert stats.get("throttled", 0) <= 0.01 * stats["billable"], stats

        # values crossed steps through the warehouse: the plan's steps and each step's counts
        with store.engine.connect() as conn:
            keys = set(conn.execute(sa.select(step_outputs.c.key).where(step_outputs.c.run_id == run.run_id)).scalars())
        assert sum("plan_sync_steps" in k for k in keys) == N // 100
        assert sum("sync_batches[" in k for k in keys) == N // 100
        assert f"asset:synced_resources/{DAY}" in keys

        # idempotent: run the day again, nothing to do; forced, every batch again, same state
        server.reset()
        finish(run_day(env, tmp_path / "run2.log"), tmp_path / "run2.log")
        assert fetched(server) == (0, 0)
        force = {"ops": {"synced_resources": {"ops": {"plan_sync_steps": {"config": {"force": True}}}}}}
        server.reset()
        finish(run_day(env, tmp_path / "run3.log", force), tmp_path / "run3.log")
        assert fetched(server) == (N, 0)  # nothing changed since
        assert_day_whole(store)
    finally:
        for worker in workers:
            worker.stop()


def running_batch_of(store, step_key: str) -> int | None:
    """The batch of a one-batch step, if it is claimed and not yet completed (mid-batch)."""
    batch_no = int(step_key.split("[b")[1].split("_")[0])
    status, _lease = store.ledger.ledger_status(date.fromisoformat(DAY), [batch_no]).get(batch_no, (None, None))
    return batch_no if status == "running" else None


def test_a_worker_killed_mid_batch_has_its_step_rerun_on_another_and_the_day_completes(celery_env, tmp_path):
    server, store, env = celery_env
    # a killed node's step comes back after the visibility timeout, which outlasts any step here
    env = {**env, "SYNC_CELERY_VISIBILITY_TIMEOUT": "15"}
    victim, survivor = start_workers(2, env, tmp_path, concurrency=1)
    try:
        server.reset()
        run = run_day(env, tmp_path / "run.log")
        instance = DagsterInstance.get()
        deadline = time.monotonic() + 120
        killed = None
        while killed is None:
            assert run.poll() is None, (tmp_path / "run.log").read_text(errors="replace")[-4000:]
            assert time.monotonic() < deadline, "the victim never got a batch step"
            runs = instance.get_runs(limit=1)
            for key, worker in steps_by_worker(instance, runs[0].run_id) if runs else []:
                if worker == "w1" and "sync_batches[" in key and running_batch_of(store, key) is not None:
                    victim.kill()  # kill -9, main process and pool process, mid-batch
                    killed = key
                    break
            time.sleep(0.05)
        batch_no = running_batch_of(store, killed)
        assert batch_no is not None, "the batch completed before the kill: nothing was tested"

        finish(run, tmp_path / "run.log")
        run_record = only_run(instance)
        assert run_record.status == DagsterRunStatus.SUCCESS
        # the killed step ran again, on the surviving node, and every step ended once
        runs_of_killed = [worker for key, worker in steps_by_worker(instance, run_record.run_id) if key == killed]
        assert runs_of_killed == ["w1", "w2"], runs_of_killed
        successes = [e.step_key for e in instance.all_logs(run_record.run_id, of_type=DagsterEventType.STEP_SUCCESS)]
        assert successes.count(killed) == 1
        # nothing lost, nothing duplicated: the half-done batch was fetched again, nothing else was
        assert_day_whole(store)
        stats = server.stats()
        assert N <= stats["probe"] <= N + 100 and N <= stats["detail"] <= N + 100, stats
        assert "succeeded" in survivor.log()
    finally:
        victim.stop()
        survivor.stop()


def test_a_worker_dies_with_the_process_that_started_it(tmp_path):
    """A test or bench killed mid-run leaves no worker on the shared broker to take the next
    run's steps with its environment: the node gets a warm shutdown when its starter dies."""
    starter = tmp_path / "starter.py"
    starter.write_text(
        "import sys, time\nfrom pathlib import Path\n"
        "from pipelines.bench.celery_workers import start_workers\n"
        f"(w,) = start_workers(1, {{'SYNC_CELERY_BROKER_URL': {REDIS_URL!r}}}, Path({str(tmp_path)!r}))\n"
        "print(w.process.pid, flush=True)\ntime.sleep(600)\n"
    )
    proc = subprocess.Popen([sys.executable, str(starter)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        worker_pid = int(proc.stdout.readline())
        os.kill(worker_pid, 0)  # the node runs
    finally:
        proc.kill()  # kill -9: no teardown of the starter's runs
        proc.wait()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            os.kill(worker_pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    pytest.fail(f"the worker {worker_pid} outlived the process that started it")
