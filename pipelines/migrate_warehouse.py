"""Bring the warehouse to this release's schema: ``python -m pipelines.migrate_warehouse``.

Every namespace of the warehouse at ``--warehouse`` (default: ``WAREHOUSE_URL``) that holds a
table of ours is migrated in turn: the URL's own, then each source's (``--source`` names some
instead). Each runs its revisions in order (``pipelines/warehouse/migrations/versions/``), on
PostgreSQL in one transaction under the schema lock. A warehouse of a release before versioned
migrations is brought to the baseline first. The sync never migrates: it refuses to start on a
warehouse at another revision, naming this command. Back the warehouse up before running it.
"""

from __future__ import annotations

import argparse

from pipelines.settings import SettingsError, load_settings
from pipelines.warehouse.connect import WarehouseNotFoundError, create_warehouse_engine
from pipelines.warehouse.migrate import WarehouseVersionError, upgrade
from pipelines.warehouse.namespaces import namespaces_in


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipelines.migrate_warehouse", description=__doc__.split("\n\n")[0])
    parser.add_argument("--warehouse", default=None, help="SQLAlchemy URL (default: WAREHOUSE_URL)")
    parser.add_argument("--source", action="append", help="a source's namespace only (repeatable)")
    args = parser.parse_args(argv)
    try:
        url = args.warehouse or load_settings().warehouse_url
        found = namespaces_in(url)
    except (SettingsError, ValueError, WarehouseNotFoundError) as exc:
        parser.exit(2, f"{parser.prog}: error: {exc}\n")
    chosen = [n for n in found if n in args.source] if args.source else found
    missing = sorted(set(args.source or []) - {n for n in found if n})
    if missing:
        parser.exit(2, f"{parser.prog}: error: no warehouse namespace {', '.join(missing)} at that URL\n")
    if not chosen:
        print("no warehouse there yet: the first run creates it at the newest revision")
        return 0
    for namespace in chosen:
        engine = create_warehouse_engine(url, namespace)
        try:
            was, now = upgrade(engine)
        except WarehouseVersionError as exc:
            parser.exit(1, f"{parser.prog}: error: {exc}\n")
        finally:
            engine.dispose()
        name = namespace or "(the URL's own)"
        print(f"{name}: already at {now}" if was == now else f"{name}: {was or 'no revision'} -> {now}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
