"""Make a single-source deployment's warehouse a source's namespace:
``python -m pipelines.move_namespace shop [--warehouse URL]``.

For moving a source configured by environment (``SOURCE_DECLARATION``) to a
component named ``shop`` (``pipelines/defs/shop/defs.yaml``) without losing what it holds: its
tables move into the ``shop`` namespace (PostgreSQL schema, or ``warehouse.shop.db``), no row
rewritten. Stop the deployment's runs first; refused if the namespace holds tables already.
"""

import argparse

from pipelines.settings import SettingsError, load_settings
from pipelines.warehouse.namespaces import NamespaceTakenError, move_into_namespace
from pipelines.warehouse.store import WarehouseNotFoundError


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m pipelines.move_namespace", description=__doc__)
    parser.add_argument("source", help="the component's name (its declaration's name:)")
    parser.add_argument("--warehouse", default=None, help="SQLAlchemy URL (default: WAREHOUSE_URL)")
    args = parser.parse_args(argv)
    try:
        moved = move_into_namespace(args.warehouse or load_settings().warehouse_url, args.source)
    except (WarehouseNotFoundError, NamespaceTakenError, SettingsError, ValueError) as exc:
        parser.exit(2, f"{parser.prog}: error: {exc}\n")
    print(f"moved {len(moved)} tables into the namespace {args.source}: {', '.join(moved)}")


if __name__ == "__main__":
    main()
