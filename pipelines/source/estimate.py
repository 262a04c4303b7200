"""What each strategy would cost a day, before anything runs. Pure.

For a declaration, a number of tracked ids ``n`` and a share ``c`` of them changed a day, the
calls (and money at the declaration's prices) of every probe strategy the API's declared
shape allows, the listing's pages included, the cheapest named. A strategy the declaration
cannot use (no bulk probe, a listing that does not carry the fingerprint, no change filter) is
said so, with why. The same rules as the sync's: a detail call per change, none where the
answer carries the details (``detail.embedded``); the watchlist's listing every day unless the
listing is the probe.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from pydantic import ValidationError

from pipelines.source.declaration import SourceDeclaration

STRATEGIES = ("projected", "conditional", "bulk", "listing", "changed_since")


@dataclass(frozen=True)
class Estimate:
    strategy: str
    calls: int | None  # None: the declaration cannot use it
    cost: float | None
    why_not: str = ""
    note: str = ""


def estimates(declared: SourceDeclaration, n: int, c: float) -> list[Estimate]:
    """Every strategy's day for ``n`` tracked ids, ``c`` of them changed."""
    return [_estimate(declared, strategy, n, c) for strategy in STRATEGIES]


def cheapest(rows: list[Estimate]) -> Estimate | None:
    usable = [r for r in rows if r.calls is not None and r.cost is not None]
    return min(usable, key=lambda r: (r.cost, r.calls)) if usable else None


def _estimate(declared: SourceDeclaration, strategy: str, n: int, c: float) -> Estimate:
    try:
        as_it = _with_strategy(declared, strategy)
    except ValidationError as exc:
        why = exc.errors()[0]["msg"].removeprefix("Value error, ")
        return Estimate(strategy, None, None, why_not=why[:160])
    changed = math.ceil(n * c)
    listing, cost = as_it.listing, as_it.cost
    pages = math.ceil(n / listing.page_size) if listing is not None and as_it.watchlist_csv is None else 0
    embedded = as_it.detail.embedded
    details = 0 if embedded is not None and (embedded.carried_by == "listing") == (strategy in _LISTING) else changed
    kinds: dict[str, float] = {"listing": pages, "detail": details}
    note = "no detail call: the answers carry the details" if details == 0 and changed else ""
    if strategy in ("projected", "conditional"):
        kinds["probe"] = n
        if strategy == "conditional":
            note = "the same calls as projected, unchanged ones answered 304 with no body"
    elif strategy == "bulk":
        assert as_it.bulk_probe is not None
        kinds["bulk_probe"] = math.ceil(n / as_it.bulk_probe.max_ids)
    elif strategy == "changed_since":
        assert listing is not None and listing.changed_since is not None
        every = listing.changed_since.reconcile_every_days
        filtered = math.ceil(changed / listing.page_size) if changed else 1
        kinds["listing"] = (math.ceil(n / listing.page_size) + (every - 1) * filtered) / every
        note = f"{note + '; ' if note else ''}a full listing every {every} days, averaged in"
    calls = round(sum(kinds.values()))
    return Estimate(strategy, calls, cost.of({k: int(round(v)) for k, v in kinds.items()}), note=note)


_LISTING = ("listing", "changed_since")


def _with_strategy(declared: SourceDeclaration, strategy: str) -> SourceDeclaration:
    """The declaration with another probe strategy, validated as a user's would be; the
    listing's change filter assumed where it is missing only for what it needs to say."""
    data = declared.model_dump(mode="json", exclude_unset=True)
    data.setdefault("probe", {})["strategy"] = strategy
    embedded = data.get("detail", {}).get("embedded")
    if embedded and embedded.get("carried_by") == "listing" and strategy not in _LISTING:
        data["detail"].pop("embedded")  # the listing carries details only as the probe
    return SourceDeclaration.model_validate(data)


def table(declared: SourceDeclaration, n: int, c: float) -> list[str]:
    """The estimate as lines of text (``check_source``), the cheapest named."""
    rows = estimates(declared, n, c)
    best = cheapest(rows)
    lines = [f"  a day of {n:,} tracked ids, {c:.0%} changed (calls, and cost at cost:):"]
    for r in rows:
        mark = " <- cheapest" if best is not None and r is best else ""
        if r.calls is None:
            lines.append(f"    {r.strategy:<14} cannot: {r.why_not}")
        else:
            extra = f" ({r.note})" if r.note else ""
            lines.append(f"    {r.strategy:<14} {r.calls:>10,} calls {r.cost:>12,.2f}{mark}{extra}")
    if best is not None and best.strategy != declared.probe.strategy:
        lines.append(f"  declared: {declared.probe.strategy}; {best.strategy} would cost less (probe.strategy)")
    return lines


def markdown(declared: SourceDeclaration, n: int, c: float) -> str:
    """The estimate as a markdown table (the UI's description of the source's assets)."""
    rows = estimates(declared, n, c)
    best = cheapest(rows)
    out = [
        f"What a day of {n:,} tracked ids, {c:.0%} changed, costs under each strategy "
        f"(declared: **{declared.probe.strategy}**):",
        "",
        "| strategy | calls | cost | |",
        "| --- | --- | --- | --- |",
    ]
    for r in rows:
        if r.calls is None:
            out.append(f"| {r.strategy} | | | cannot: {r.why_not} |")
        else:
            star = "**cheapest**" if best is not None and r is best else ""
            out.append(f"| {r.strategy} | {r.calls:,} | {r.cost:,.2f} | {star} {r.note} |")
    return "\n".join(out)
