"""``make demo`` against the commit before issue 14 (target 4): the README's first command, run
as a user runs it (``python -m pipelines.demo``: 30,000 resources, the embedded sample API,
SQLite), once from a git worktree of ``BASELINE`` and once from this checkout, one after the
other on the same machine. Day 2's sub-jobs per second must be at least twice the baseline's,
with the same printed counts.

Needs the project's git checkout (``baseline.worktree``); from an installed package the section
says so and measures nothing.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from pipelines.bench.baseline import BASELINE, ROOT, worktree

ROWS = {  # the demo's printed rows this section reads, by their label
    "sub-jobs": "sub_jobs",
    "changed (new)": "changed",
    "unchanged": "unchanged",
    "API calls made": "calls_made",
    "MB received": "mb_received",
    "wall time (s)": "wall_s",
    "sub-jobs per second": "sub_jobs_per_s",
}


def parse_summary(printed: str, label_width: int = 30, column_width: int = 16) -> list[dict]:
    """Each day's figures from the demo's printed table (``pipelines.demo.render``: a label
    column, then one column a day)."""
    days: list[dict] = []
    for line in printed.splitlines():
        key = ROWS.get(line[:label_width].strip())
        if key is None:
            continue
        rest = line[label_width:]
        cells = [rest[i : i + column_width].strip() for i in range(0, len(rest), column_width)]
        days += [{} for _ in range(len(cells) - len(days))]
        for day, cell in zip(days, cells, strict=False):
            day[key] = float(cell.split()[0].replace(",", ""))
    return days


def run_demo(cwd: Path, out: Path, args: list[str]) -> list[dict]:
    """``python -m pipelines.demo`` with ``cwd``'s ``pipelines`` package first on the path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SOURCE_", "SAMPLE_API_", "WAREHOUSE_"))}
    env.pop("PYTHONPATH", None)
    done = subprocess.run(
        [sys.executable, "-m", "pipelines.demo", "--dir", str(out), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"make demo in {cwd} failed ({done.returncode}): {done.stderr[-2000:]}")
    return parse_summary(done.stdout)


def demo_against_baseline(args: list[str] | None = None, log=print) -> list[dict]:
    """The baseline's days, then this checkout's, each row a day."""
    rows: list[dict] = []
    with worktree() as tree, tempfile.TemporaryDirectory(prefix="bench-demo-") as tmp:
        if tree is None:
            log("  not a git checkout: the demo's baseline cannot be read, nothing measured")
            return []
        for version, cwd in ((BASELINE, tree), ("this commit", ROOT)):
            log(f"  make demo at {version} ...")
            days = run_demo(cwd, Path(tmp) / f"demo-{len(rows)}", args or [])
            rows += [{"version": version, "day": n, **day} for n, day in enumerate(days, 1)]
            log(f"    day 2: {days[-1]['wall_s']:.1f} s, {days[-1]['sub_jobs_per_s']:,.0f} sub-jobs/s")
    return rows


def demo_target(rows: list[dict]) -> tuple[str, bool] | None:
    """Day 2's speed-up over the baseline, and whether the counts are the same."""
    base = next((r for r in rows if r["version"] == BASELINE and r["day"] == 2), None)
    ours = next((r for r in rows if r["version"] != BASELINE and r["day"] == 2), None)
    if base is None or ours is None:
        return None
    counted = ("sub_jobs", "changed", "unchanged", "calls_made", "mb_received")
    same = all(base[k] == ours[k] for k in counted)
    speedup = (ours["sub_jobs"] / ours["wall_s"]) / (base["sub_jobs"] / base["wall_s"])
    measured = f"{speedup:.2f}x (day 2 in {base['wall_s']:.1f} s at {BASELINE}, {ours['wall_s']:.1f} s now), " + (
        "same counts" if same else "COUNTS DIFFER"
    )
    return measured, speedup >= 2 and same
