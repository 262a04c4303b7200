"""A short run of the benchmark as ``make bench`` runs it (small N): it asserts that the figures
it prints are right (calls counted by the server equal calls counted by the client), never speed."""

import json
import os
import subprocess
import sys

from pipelines.bench import cpu
from pipelines.bench.days import minimum_calls
from pipelines.bench.demo import BASELINE, demo_target, parse_summary
from pipelines.bench.report import STEPS, cpu_split, sync_cpu_bounds, targets, ten_x_target
from pipelines.bench.runs import server_rate
from pipelines.demo import render
from pipelines_tests.helpers import ROOT


def test_a_small_benchmark_run_counts_calls_the_server_agrees_with(tmp_path):
    out = tmp_path / "results"
    args = [
        "--n",
        "300",
        "--rate",
        "400",
        "--latency-ms",
        "2",
        "--jitter-ms",
        "1",
        "--sections",
        "days,shared,ceiling",  # the scale-out row's Celery day is test_celery's (the same counting, on two nodes)
    ]
    args += ["--strategies", "bulk,changed_since", "--shared-n", "200", "--ceiling-n", "500", "--out", str(out)]
    done = subprocess.run(
        [sys.executable, "-m", "pipelines.bench", *args], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "The standard day" in done.stdout and "Targets" in done.stdout
    (path,) = out.glob("bench-*.json")
    results = json.loads(path.read_text())
    days = results["days"]
    pipelines = ("naive", "bulk", "changed_since")
    assert [(r["pipeline"], r["day"]) for r in days] == [(p, d) for p in pipelines for d in (1, 2)]
    for r in days:
        where = f"{r['pipeline']} day {r['day']}"
        assert r["server_sync_calls"] == r["client_sync_calls"], where
        assert r["server_listing_calls"] == r["client_listing_calls"] == 1, where
        assert r["server_throttled"] == r["client_throttled"], where
        assert r["sub_jobs"] == 300, where
    for r in days:  # where each run's time went, step by step (the overhead's breakdown)
        if r["pipeline"] != "naive":
            assert set(STEPS) <= set(r["step_seconds"]) and r["outside_steps_s"] >= 0, r["step_seconds"]
    assert "Per-run overhead by step" in done.stdout
    naive = [r for r in days if r["pipeline"] == "naive"]
    assert all(r["server_sync_calls"] == 600 and r["statements"] == 300 for r in naive)
    bulk_day2 = next(r for r in days if r["pipeline"] == "bulk" and r["day"] == 2)
    assert bulk_day2["server_sync_calls"] == 3 + bulk_day2["changed"]  # 3 bulk probes of 100 ids
    listing_day2 = next(r for r in days if r["pipeline"] == "changed_since" and r["day"] == 2)
    assert listing_day2["server_sync_calls"] == listing_day2["changed"]  # the listing of changes was the probe
    assert listing_day2["calls_vs_minimum"] == 1.0
    for row in results["shared"]:
        assert row["runs_succeeded"] == 3, row
        assert row["calls"] == row["client_calls"]
    # the client's ceiling: every loop's calls, as many as the server answered
    loops = results["ceiling"]
    names = ["bare aiohttp", "bare aiohttp, uvloop", "bare aiohttp, uvloop, parsed", "bare httpx", "client"]
    assert [r["loop"] for r in loops] == names
    assert [len(r["every_run"]) for r in loops] == [5, 5, 5, 1, 5]  # the aiohttp loops and the client take turns
    assert max(loops[0]["vs_aiohttp"], loops[1]["vs_aiohttp"]) == 1.0  # against the faster bare loop
    assert all(run["server_requests"] == run["client_requests"] == 500 for r in loops for run in r["every_run"])
    assert all(r["cpu_us_per_request"] > 0 and r["vs_aiohttp"] > 0 for r in loops)
    assert "The client's ceiling" in done.stdout
    assert {t["target"][:2] for t in results["targets"]} >= {"1 ", "2 ", "4 ", "5 ", "14"}


def test_the_benchmark_speaks_the_second_profile_and_counts_it_right(tmp_path):
    """The standard day from examples/sample_shop.yaml (numeric ids, envelopes, Link pages, bulk
    probes of 250): the same calls on both sides, and exactly the minimum its shape allows."""
    out = tmp_path / "results"
    args = ["--n", "600", "--rate", "400", "--latency-ms", "2", "--jitter-ms", "1", "--sections", "days"]
    args += ["--profile", "shop", "--strategies", "bulk,changed_since", "--out", str(out)]
    done = subprocess.run(
        [sys.executable, "-m", "pipelines.bench", *args], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (path,) = out.glob("bench-*.json")
    days = json.loads(path.read_text())["days"]
    assert [(r["pipeline"], r["day"], r["profile"]) for r in days] == [
        (p, d, "shop") for p in ("bulk", "changed_since") for d in (1, 2)
    ]
    for r in days:
        where = f"{r['pipeline']} day {r['day']}"
        assert r["server_sync_calls"] == r["client_sync_calls"], where
        assert r["server_listing_calls"] == r["client_listing_calls"], where
        assert r["calls_vs_minimum"] == 1.0, where
    bulk_day2 = next(r for r in days if r["pipeline"] == "bulk" and r["day"] == 2)
    assert bulk_day2["server_sync_calls"] == 3 + bulk_day2["changed"]  # 600 ids in bulk probes of 250


def test_minimum_calls_follow_the_apis_shape():
    assert minimum_calls("naive", 30_000, 6_000) == 60_000
    assert minimum_calls("projected", 30_000, 6_000) == 36_000
    assert minimum_calls("bulk", 30_000, 6_000) == 6_300
    assert minimum_calls("bulk", 30_001, 0) == 301


def test_server_rate_reads_the_busiest_five_seconds():
    timeline = [[0, 100, 0], [1, 200, 0], [2, 200, 5], [3, 200, 0], [4, 200, 0], [5, 200, 0], [7, 10, 0]]
    rates = server_rate(timeline)
    assert rates["server_rate_peak5"] == 200
    assert rates["server_rate_mean"] == (100 + 5 * 200 + 10) / 8


def test_targets_judge_what_was_measured():
    row = {
        "pipeline": "bulk",
        "day": 2,
        "calls_vs_minimum": 1.02,
        "wall_vs_bound": 1.1,
        "overhead_share": 0.01,
        "batches": 300,
        "run_wall_s": 40.0,
    }
    naive = {**row, "pipeline": "naive", "run_wall_s": 300.0}
    got = {t["target"]: t["met"] for t in targets({"days": [naive, row]}, 200)}
    assert got["1 calls <= 1.01 x minimum"] == "NO"
    assert got["2 wall <= 1.15 x rate bound"] == "yes"
    assert got["2 bulk day 2 >= 5x faster than naive"] == "yes"
    assert not [t for t in got if t.startswith("14.3")]  # no step breakdown measured: not judged
    timed = {**row, "step_seconds": {"job_set": 0.5}, "overhead_s": 2.4}
    got = {t["target"]: (t["measured"], t["met"]) for t in targets({"days": [naive, timed]}, 200)}
    assert got["14.3 bulk day 2: per-run overhead <= 2 s (was about 5 s)"] == ("2.40 s", "NO")
    assert got["14.3 bulk day 2 <= 1.15 x rate bound (was 1.21x)"] == ("1.100", "yes")
    loop = {"requests_per_s": 9_000.0, "cpu_us_per_request": 90.0}
    ceiling = [{**loop, "loop": "client", "vs_aiohttp": 0.79}]
    got = {t["target"]: (t["measured"], t["met"]) for t in targets({"ceiling": ceiling}, 200)}
    assert got["14.1 client req/s >= 0.8 x bare aiohttp"] == ("0.79x (9,000 req/s, 90 us CPU/req)", "NO")
    ceiling += [{**loop, "loop": "bare aiohttp, uvloop, parsed", "vs_aiohttp": 0.93}]
    got = {t["target"]: (t["measured"], t["met"]) for t in targets({"ceiling": ceiling}, 200)}
    assert got["14.1 client req/s >= 0.8 x bare aiohttp"][0].endswith("; the bare loop parsing each body: 0.93x")


def test_the_cpu_split_says_what_one_sync_process_can_reach():
    small = {"sync_cpu_us": 200.0, "server_cpu_us": 110.4, "postgres_cpu_us": 39.6}
    assert cpu_split(small) == "200+110+40" and cpu_split({"sync_cpu_us": 5.0}) == "5+?+?"
    results = {"bare_aiohttp_per_s": 8_000.0, "bare_aiohttp_runs": [{"client_cpu_us": 90.0}, {"client_cpu_us": 110.0}]}
    said = sync_cpu_bounds(small, results)  # 1e6 / 200 us = 5,000 req/s against 8,000
    assert "the sync process 200 us (the bare loop's 100)" in said and "at most 0.62x" in said
    assert sync_cpu_bounds({}, results) == "" and sync_cpu_bounds(small, {"bare_aiohttp_runs": []}) == ""
    assert "on these" not in said  # the cores it ran on unknown: no machine bound
    # 2 cores, 2e6 / (100 + 110.4 + 39.6) us = 8,000 req/s: the bare loop's own rate, 1.00x
    said = sync_cpu_bounds(small, {**results, "cores": 2})
    assert "on these 2 cores, beside the API server (110 us) and PostgreSQL (40 us)" in said
    assert said.endswith("a sync whose process cost only the bare loop's 100 us would reach at most 1.00x")
    assert sync_cpu_bounds({**small, "postgres_cpu_us": 150.0}, {**results, "cores": 2}).endswith("at most 0.69x")


def test_cpu_seconds_are_read_from_proc(tmp_path, monkeypatch):
    ticks = os.sysconf("SC_CLK_TCK")
    line = f"42 (post gres) (x)) S 1 2 3 4 5 6 7 8 9 10 {3 * ticks} {ticks} {2 * ticks} {ticks} 20 0 1 0"
    assert cpu._seconds(line, children=False) == 4.0 and cpu._seconds(line, children=True) == 7.0
    fake = tmp_path / "proc"
    for pid, name in ((7, "postgres"), (8, "python3"), (9, "postgres")):
        (fake / str(pid)).mkdir(parents=True)
        (fake / str(pid) / "stat").write_text(f"{pid} ({name}) S 1 2 3 4 5 6 7 8 9 10 {ticks} {ticks} {ticks} 0 20")
    (fake / "self").mkdir()
    monkeypatch.setattr(cpu, "PROC", fake)
    assert cpu.postgres_cpu() == 6.0 and cpu.process_cpu(8) == 2.0 and cpu.process_cpu(99) is None
    monkeypatch.setattr(cpu, "PROC", tmp_path / "none")
    assert cpu.postgres_cpu() is None


def test_the_10x_day_is_judged_against_the_baselines_in_the_same_run():
    ours = {"version": "this commit", "sub_jobs": 300_000, "server_calls": 303_600, "run_wall_s": 100.0}
    assert ten_x_target(ours, [ours]) is None  # no baseline measured: not judged
    base = {**ours, "version": BASELINE, "run_wall_s": 320.0}
    assert ten_x_target(ours, [ours, base]) == (f"3.20x (320 s at {BASELINE}, 100 s now)", True)
    assert ten_x_target(ours, [ours, {**base, "run_wall_s": 250.0}])[1] is False
    measured, met = ten_x_target(ours, [ours, {**base, "server_calls": 303_601}])
    assert not met and measured.endswith("CALLS DIFFER")
    other_size = {**base, "sub_jobs": 30_000}
    assert ten_x_target(ours, [ours, other_size]) is None


def test_the_demo_section_reads_what_make_demo_prints_and_judges_day_2():
    """The baseline's demo prints the same table (``pipelines.demo.render``): the section reads
    both from it, and the target wants 2x day 2's sub-jobs/s with every count the same."""
    day = {"sub_jobs": 30_000, "batches_completed": 300, "batches_expected": 300, "new": 0, "gone": 0}
    day.update(retry=0, dead=0, naive_calls=60_000, bytes_received=15_300_000)
    base = [
        {**day, "day": "2026-01-01", "changed": 30_000, "unchanged": 0, "calls_made": 60_000, "calls_saved": 0},
        {
            **day,
            "day": "2026-01-02",
            "changed": 5_920,
            "unchanged": 24_080,
            "calls_made": 35_920,
            "calls_saved": 24_080,
        },
    ]
    printed = render([{**base[0], "wall_s": 80.0}, {**base[1], "wall_s": 66.0}], "projected")
    read = parse_summary("noise before\n" + printed + "\nwarehouse: /x")
    assert [(d["sub_jobs"], d["changed"], d["calls_made"], d["wall_s"]) for d in read] == [
        (30_000, 30_000, 60_000, 80.0),
        (30_000, 5_920, 35_920, 66.0),
    ]
    rows = [{"version": BASELINE, "day": n, **d} for n, d in enumerate(read, 1)]
    faster = parse_summary(render([{**base[0], "wall_s": 40.0}, {**base[1], "wall_s": 30.0}], "projected"))
    measured, met = demo_target(rows + [{"version": "this commit", "day": n, **d} for n, d in enumerate(faster, 1)])
    assert met and measured.startswith("2.20x") and "same counts" in measured
    slower = parse_summary(render([{**base[0], "wall_s": 40.0}, {**base[1], "wall_s": 34.0}], "projected"))
    assert not demo_target(rows + [{"version": "now", "day": n, **d} for n, d in enumerate(slower, 1)])[1]
    other = [{**d, "calls_made": d["calls_made"] + 1} for d in faster]
    measured, met = demo_target(rows + [{"version": "now", "day": n, **d} for n, d in enumerate(other, 1)])
    assert not met and "COUNTS DIFFER" in measured
