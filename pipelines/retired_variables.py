"""The one-step migration of a deployment configured by the retired flat variables
(``SOURCE_API_URL``, ``SOURCE_PROBE_STRATEGY``, ``SAMPLE_API_RESOURCES`` ...): writes the
declaration (docs/sources.md) that says what they said.

    python -m pipelines.retired_variables --out source.yaml

then set ``SOURCE_DECLARATION=source.yaml`` and unset the variables it names as moved. The URL,
token and proxy stay in their variables (the declaration reads them through ``base_url_env``,
``token_env`` and ``proxy_url_env``): no secret is written to the file. The code location
refuses to load while a retired variable is set that no declaration reads, naming this command.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Mapping, Set
from pathlib import Path
from typing import Any

import yaml

from pipelines.settings import SettingsError, warn_unknown_variables
from pipelines.source.declaration import SourceDeclaration, declare

# Every retired variable that described the API, and the declaration keys that say it now.
MOVED: dict[str, tuple[str, ...]] = {
    "SOURCE_PROBE_STRATEGY": ("probe.strategy",),
    "SOURCE_PROBE_FIELDS": ("probe.fields",),
    "SOURCE_FINGERPRINT_FIELDS": ("fingerprint",),
    "SOURCE_ITEM_PATH": ("probe.path",),
    "SOURCE_DETAIL_PATH": ("detail.path",),
    "SOURCE_ITEMS_PATH": ("bulk_probe.path", "listing.path"),
    "SOURCE_CONNECT_TIMEOUT": ("client.timeouts.connect",),
    "SOURCE_READ_TIMEOUT": ("client.timeouts.read",),
    "SOURCE_REQUEST_DEADLINE": ("client.timeouts.deadline",),
    "SOURCE_MAX_RESPONSE_BYTES": ("client.max_response_bytes",),
    "SOURCE_MAX_ATTEMPTS": ("client.retries.max_attempts",),
    "SOURCE_BREAKER_FAILURE_RATIO": ("client.breaker.failure_ratio",),
    "SOURCE_BREAKER_MIN_CALLS": ("client.breaker.min_calls",),
    "SOURCE_BREAKER_COOLDOWN": ("client.breaker.cooldown",),
    "SOURCE_BREAKER_HOLD": ("client.breaker.hold",),
    "SOURCE_MAX_CONCURRENCY": ("rate.max_concurrency",),
    "SOURCE_MIN_CONCURRENCY": ("rate.min_concurrency",),
    "SOURCE_RATE_LIMIT": ("rate.requests_per_second",),
    "SOURCE_RATE_LIMITER_KEY": ("rate.budget",),
    "SAMPLE_API_RESOURCES": ("client.sample.resources",),
    "SAMPLE_API_CHANGE_RATE": ("client.sample.change_rate",),
    "SAMPLE_API_SEED": ("client.sample.seed",),
    "COST_PER_1000_REQUESTS": ("cost.probe", "cost.bulk_probe", "cost.detail", "cost.listing"),
    # a source's operations (its schedule, days, batches, completion and alerts)
    "PIPELINE_START_DATE": ("operations.start_date",),
    "PIPELINE_TIMEZONE": ("operations.schedule.timezone",),
    "SCHEDULE_HOUR": ("operations.schedule.cron",),
    "SCHEDULE_MINUTE": ("operations.schedule.cron",),
    "SYNC_BATCH_SIZE": ("operations.batch_size",),
    "COMPLETION_DEADLINE": ("operations.completion.deadline",),
    "COMPLETION_MIN_RATIO": ("operations.completion.min_ratio",),
    "COMPLETION_LOOKBACK_DAYS": ("operations.completion.lookback_days",),
    "WATCHLIST_CSV": ("watchlist_csv",),
}
CRON = ("SCHEDULE_HOUR", "SCHEDULE_MINUTE")  # two variables, one cron expression
LISTS = frozenset({"SOURCE_PROBE_FIELDS", "SOURCE_FINGERPRINT_FIELDS"})
# Read by the written declaration, where they are: their values never go into a file.
URL, TOKEN, PROXY, WEBHOOK = "SOURCE_API_URL", "SOURCE_API_TOKEN", "SOURCE_API_PROXY_URL", "ALERT_WEBHOOK_URL"
RETIRED = frozenset({*MOVED, URL, PROXY, WEBHOOK})
COMMAND = "python -m pipelines.retired_variables --out source.yaml"


class RetiredVariableError(SettingsError):
    """A retired flat variable is set; the message names it and the migration command."""


def retired_in(environ: Mapping[str, str], read_by_sources: Set[str] = frozenset()) -> list[str]:
    """The retired variables ``environ`` sets that no declaration reads, sorted."""
    return sorted(name for name in RETIRED if name in environ and name not in read_by_sources)


def refuse_retired(environ: Mapping[str, str], read_by_sources: Set[str] = frozenset()) -> None:
    """Raise naming the retired variables set (the API is described by a declaration only)."""
    found = retired_in(environ, read_by_sources)
    if found:
        raise RetiredVariableError(
            f"{', '.join(found)}: retired; a source declaration says what these said (docs/sources.md). "
            f"`{COMMAND}` writes this environment's declaration; then set SOURCE_DECLARATION=source.yaml "
            "and unset the variables it lists as moved"
        )


def check_environment(environ: Mapping[str, str], read_by_sources: Set[str] = frozenset()) -> None:
    """What the code location does once it knows what its sources read: refuse a retired
    variable none reads (naming the command that moves it), and warn about any other variable of
    ours that nothing reads."""
    refuse_retired(environ, read_by_sources)
    warn_unknown_variables(environ, read_by_sources, ignore=RETIRED)


def declaration_from(environ: Mapping[str, str], name: str = "source") -> SourceDeclaration:
    """The declaration the retired variables in ``environ`` described: the API of
    docs/source-api.md at ``SOURCE_API_URL`` (unset: the embedded sample API), a bearer token
    from ``SOURCE_API_TOKEN``, each variable set moved to its keys, every other key the schema's
    default. A bad value is refused naming its variable."""
    changes: dict[str, Any] = {"client.auth": {"type": "bearer", "token_env": TOKEN}}
    for variable, keys in MOVED.items():
        raw = environ.get(variable, "").strip()
        if not raw or variable in CRON:
            continue
        value: Any = [part.strip() for part in raw.split(",") if part.strip()] if variable in LISTS else raw
        changes.update(dict.fromkeys(keys, value))
    if any(environ.get(name, "").strip() for name in CRON):  # HH:MM every day, as the schedule ran
        hour, minute = (environ.get(name, "").strip() or default for name, default in zip(CRON, "10", strict=True))
        changes["operations.schedule.cron"] = f"{minute} {hour} * * *"
    if environ.get("WATCHLIST_CSV", "").strip():  # it was read from the working directory
        changes["watchlist_csv"] = str(Path(environ["WATCHLIST_CSV"].strip()).resolve())
    if environ.get(WEBHOOK, "").strip():
        changes["operations.alerts.webhook_url_env"] = WEBHOOK
    fingerprint = changes.get("fingerprint", SourceDeclaration.model_fields["fingerprint"].default)
    changes["detail.required"] = ["id", *fingerprint]  # a detail without them was poison
    if environ.get(PROXY, "").strip():
        changes["client.proxy_url_env"] = PROXY
    if environ.get(URL, "").strip():  # the API over HTTP, its URL read where it is
        changes.update({"client.sample": None, "client.base_url_env": URL})
    try:
        return declare(None, changes, name)
    except ValueError as exc:
        raise RetiredVariableError(f"the retired variables describe no valid API: {_by_variable(str(exc))}") from None


def _by_variable(message: str) -> str:
    """A declaration's error in the words of the variables that gave the keys."""
    by_key: dict[str, list[str]] = {}
    for variable, keys in MOVED.items():
        for key in keys:
            by_key.setdefault(key, []).append(variable)
    for key, variables in sorted(by_key.items(), key=lambda item: -len(item[0])):  # a key before its prefix
        message = re.sub(rf"(?<![\w.]){re.escape(key)}(?![\w.])", f"{key} ({', '.join(variables)})", message)
    return message


def moved(environ: Mapping[str, str]) -> list[str]:
    """The variables set in ``environ`` that the declaration now says (to unset after the move)."""
    return sorted(name for name in MOVED if environ.get(name, "").strip())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipelines.retired_variables", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, help="where to write the declaration (default: standard output)")
    parser.add_argument("--name", default="source", help="the source's name (its tables' namespace)")
    args = parser.parse_args(argv)
    try:
        declared = declaration_from(os.environ, args.name)
    except RetiredVariableError as exc:
        print(exc, file=sys.stderr)
        return 1
    text = (
        "# Written by `python -m pipelines.retired_variables` from the retired flat variables.\n"
        + "".join(f"# moved here: {name}\n" for name in moved(os.environ))
        + yaml.safe_dump(declared.model_dump(mode="json", exclude_defaults=True), sort_keys=False)
    )
    if args.out is None:
        sys.stdout.write(text)
    else:
        args.out.write_text(text)
        print(f"wrote {args.out}: set SOURCE_DECLARATION={args.out} and unset {', '.join(moved(os.environ)) or '-'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
