"""Check a source declaration: ``python -m pipelines.check_source FILE...``.

Prints what each declaration says (or every mistake, with its line and key), and what a day
would cost under every strategy the API's shape allows (``--ids``, ``--changed``), and exits 1
when one is invalid. Nothing is called: the variables it names are only checked for being set.
"""

from __future__ import annotations

import argparse
import os
import sys

from pipelines.source.declaration import SourceDeclaration
from pipelines.source.declaration_file import DeclarationError, load_declaration
from pipelines.source.estimate import table as estimate_table


def describe(source: SourceDeclaration, ids: int = 10_000, changed: float = 0.2) -> list[str]:
    client, probe = source.client, source.probe
    where = client.base_url or (
        f"${client.base_url_env}"
        if client.base_url_env
        else f"the embedded sample ({client.sample.profile if client.sample else ''})"
    )
    auth = client.auth
    variables = auth.variables()
    lines = [
        f"source {source.name!r}: {where}, auth {auth.type}",
        f"  ids: {source.id.type} at {source.id.path}; fingerprint: {', '.join(source.fingerprint)}",
        f"  probe: {probe.strategy}"
        + (f" ({source.bulk_probe.max_ids} ids a call)" if probe.strategy == "bulk" and source.bulk_probe else ""),
        f"  detail: {source.detail.path} ({source.detail.shape})",
        "  listing: " + (f"{source.listing.path}, {source.listing.paginator.type} pages" if source.listing else "none"),
        f"  price per 1,000 calls: probe {source.cost.probe:g}, bulk probe {source.cost.bulk_probe:g}, "
        f"detail {source.cost.detail:g}, listing {source.cost.listing:g}",
        f"  spend a day: {_ceiling(source)}",
    ]
    if client.base_url_env:
        variables.append(client.base_url_env)
    unset = [v for v in variables if not os.environ.get(v)]
    if unset and not source.embedded:
        lines.append(f"  NOT SET in this environment: {', '.join(unset)}")
    return lines + estimate_table(source, ids, changed)


def _ceiling(source: SourceDeclaration) -> str:
    spend, policy = source.spend, source.spend_policy()
    calls = (
        f"at most {spend.max_calls:,} calls"
        if spend.max_calls is not None
        else f"at most {spend.min_calls:,} + {spend.headroom:g} x ({policy.per_id:g} calls a tracked id and the listing's pages)"
    )
    money = f", {spend.max_cost:g} in money" if spend.max_cost is not None else ""
    age = f"; a day older than {spend.max_age_days} days is not synced unless opted in" if spend.max_age_days else ""
    return calls + money + age


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipelines.check_source", description=__doc__)
    parser.add_argument("files", nargs="+")
    parser.add_argument("--ids", type=int, default=10_000, help="tracked ids of the day the estimate is for")
    parser.add_argument("--changed", type=float, default=0.2, help="the share of them changed a day")
    args = parser.parse_args(argv)
    failed = False
    for path in args.files:
        try:
            print("\n".join(describe(load_declaration(path), args.ids, args.changed)))
        except DeclarationError as exc:
            print(exc, file=sys.stderr)
            failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
