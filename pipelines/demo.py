"""The main job with no setup: ``python -m pipelines.demo`` (``make demo``).

Materialises two consecutive days of the daily sync against the embedded sample API into a
fresh SQLite warehouse under ``.demo/``, shows progress from the batch ledger while it runs, and
prints what each day cost against the naive two calls per sub-job.
"""

import argparse
import shutil
import sys
import threading
import time
from datetime import date, timedelta
from pathlib import Path

import yaml
from dagster import AssetsDefinition, DagsterInstance, materialize
from tqdm import tqdm

from pipelines.settings import load_settings
from pipelines.source.declaration_file import load_declaration
from pipelines.sync.resources import DeclaredSource, WarehouseResource, declared_source
from pipelines.sync.source_defs import source_definitions
from pipelines.warehouse.schema import batch_ledger

SAMPLE_DECLARATION = Path(__file__).parent / "defs" / "sample" / "defs.yaml"
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m pipelines.demo", description=__doc__)
    parser.add_argument("--resources", type=int, help="watchlist size (default: the declaration's sample's)")
    parser.add_argument("--change-rate", type=float, help="daily change share (default: the declaration's)")
    parser.add_argument("--days", type=int, default=2)
    parser.add_argument("--start", type=date.fromisoformat, help="the first day (default: the declaration's)")
    parser.add_argument(
        "--strategy",
        choices=["projected", "conditional", "bulk", "listing", "changed_since"],
        help="the probe strategy (default: the declaration's)",
    )
    parser.add_argument(
        "--source",
        type=Path,
        default=load_settings().source_declaration or SAMPLE_DECLARATION,
        help="a source declaration (docs/sources.md) whose client.sample is the embedded sample API "
        "(default: the shipped sample's, pipelines/defs/sample/defs.yaml; examples/sample_shop.yaml is another)",
    )
    parser.add_argument("--dir", type=Path, default=Path(".demo"), help="wiped and refilled")
    return parser.parse_args(argv)


def watch_progress(store, day: date, stop: threading.Event) -> None:
    """A progress bar fed by the ledger, the same truth the pipeline keeps."""
    with tqdm(desc=f"  {day} batches", unit="batch", file=sys.stderr, leave=False) as bar:
        while not stop.wait(0.3):
            expected = store.job_sets.job_set_counts(day)["batches"]
            if expected:
                bar.total = expected
                bar.n = store.reports.count(batch_ledger, partition=day)
                bar.refresh()


def run(args: argparse.Namespace) -> list[dict]:
    shutil.rmtree(args.dir, ignore_errors=True)
    args.dir.mkdir(parents=True)
    warehouse = WarehouseResource(url=f"sqlite:///{(args.dir / 'warehouse.db').resolve()}")
    source_api = _source(args)
    made = source_definitions(None, source_api)  # the source's assets and checks, in its own days
    assets = [a for a in (*(made.assets or []), *(made.asset_checks or [])) if isinstance(a, AssetsDefinition)]
    start = source_api.declaration().operations.start_date
    resources = {"source_api": source_api, "warehouse": warehouse}
    store = warehouse.store()
    home = args.dir / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    instance = DagsterInstance.local_temp(str(home.resolve()))
    days = []
    for offset in range(args.days):
        day = start + timedelta(days=offset)
        print(
            f"day {offset + 1}: materialising {day} (watchlist + retry_queue -> job_set -> synced_resources -> dead_letter)",
            flush=True,
        )
        stop = threading.Event()
        watcher = threading.Thread(target=watch_progress, args=(store, day, stop), daemon=True)
        watcher.start()
        started = time.perf_counter()
        try:
            result = materialize(
                assets,
                partition_key=day.isoformat(),
                resources=resources,
                instance=instance,
                run_config=QUIET,
            )
        finally:
            stop.set()
            watcher.join()
        summary = dict(result.output_for_node("synced_resources"))
        summary.update(day=day, wall_s=time.perf_counter() - started)
        days.append(summary)
    return days


def _source(args: argparse.Namespace) -> DeclaredSource:
    """The declaration the demo runs, written to ``args.dir``: ``--source`` with its sample's
    size, change share and probe strategy as the command line says."""
    declared = load_declaration(args.source)
    if declared.client.sample is None:
        raise SystemExit(f"{args.source}: the demo runs the embedded sample API; this declaration names a real API")
    given = {"resources": args.resources, "change_rate": args.change_rate}
    sample = declared.client.sample.model_copy(update={k: v for k, v in given.items() if v is not None})
    data = declared.model_dump(mode="json", exclude_defaults=True)
    data["client"]["sample"] = sample.model_dump(mode="json")
    if args.strategy is not None:
        data.setdefault("probe", {})["strategy"] = args.strategy
    if args.start is not None:
        data.setdefault("operations", {})["start_date"] = args.start.isoformat()
    path = args.dir / "source.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return declared_source(path.resolve())


def render(days: list[dict], strategy: str) -> str:
    rows = [
        ("sub-jobs", lambda d: f"{d['sub_jobs']:,}"),
        ("batches completed", lambda d: f"{d['batches_completed']}/{d['batches_expected']}"),
        ("changed (new)", lambda d: f"{d['changed']:,} ({d['new']:,})"),
        ("unchanged", lambda d: f"{d['unchanged']:,}"),
        ("gone", lambda d: f"{d['gone']:,}"),
        ("retry queued / dead-lettered", lambda d: f"{d['retry']:,} / {d['dead']:,}"),
        ("API calls made", lambda d: f"{d['calls_made']:,}"),
        ("naive calls (2 per sub-job)", lambda d: f"{d['naive_calls']:,}"),
        ("calls saved", lambda d: f"{d['calls_saved']:,} ({d['calls_saved'] / max(d['naive_calls'], 1):.0%})"),
        ("MB received", lambda d: f"{d['bytes_received'] / 1e6:,.1f}"),
        ("wall time (s)", lambda d: f"{d['wall_s']:.1f}"),
        ("sub-jobs per second", lambda d: f"{d['sub_jobs'] / max(d['wall_s'], 1e-9):,.0f}"),
    ]
    width = 30
    header = f"{'probe strategy: ' + strategy:<{width}}" + "".join(f"{str(d['day']):>16}" for d in days)
    lines = [header, "-" * len(header)]
    lines += [f"{label:<{width}}" + "".join(f"{fmt(d):>16}" for d in days) for label, fmt in rows]
    return "\n".join(lines)


def ui_env(args: argparse.Namespace) -> dict[str, str]:
    """What ``make ui`` needs to open the Dagster UI on this demo: its instance, its warehouse,
    and the declaration it ran (its sample's world and first day, so runs launched there match)."""
    env = {
        "DAGSTER_HOME": str((args.dir / "dagster_home").resolve()),
        "WAREHOUSE_URL": f"sqlite:///{(args.dir / 'warehouse.db').resolve()}",
    }
    return {**env, "SOURCE_DECLARATION": str((args.dir / "source.yaml").resolve())}  # the one the demo ran


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    days = run(args)
    env = ui_env(args)
    (args.dir / "ui.env").write_text("".join(f"{k}={v}\n" for k, v in env.items()))
    print()
    print(render(days, load_declaration(args.dir / "source.yaml").probe.strategy))
    print(f"\nwarehouse: {(args.dir / 'warehouse.db').resolve()}")
    print("see these days in the Dagster UI (runs, checks, plots over partitions, the dead letter):")
    print("  make ui    # then open http://127.0.0.1:3000")


if __name__ == "__main__":
    main()
