"""Alert messages, as Slack-compatible webhook JSON (``text`` plus ``blocks``). Pure."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ICONS = {
    "short": ":red_circle:",
    "no_job_set": ":red_circle:",
    "behind_pace": ":warning:",
    "run_failed": ":x:",
    "recovered": ":large_green_circle:",
    "deferred": ":red_circle:",
    "auth_failed": ":closed_lock_with_key:",
    "systemic_failure": ":rotating_light:",
    "api_contract": ":rotating_light:",
    "listing_incomplete": ":warning:",
    "spend_ceiling": ":money_with_wings:",
}


@dataclass(frozen=True)
class Alert:
    kind: str  # short / behind_pace / no_job_set / deferred / recovered / run_failed / auth_failed / systemic_failure / api_contract / listing_incomplete / spend_ceiling
    partition: str | None
    title: str
    details: dict[str, Any] = field(default_factory=dict)
    run_url: str | None = None
    source: str | None = None  # the source's name, in a code location of many

    @property
    def heading(self) -> str:
        return f"[{self.source}] {self.title}" if self.source else self.title

    def text(self) -> str:
        icon = ICONS.get(self.kind, ":bell:")
        lines = [f"{icon} {self.heading}"]
        lines += [f"• {name}: {value}" for name, value in self.details.items()]
        if self.run_url:
            lines.append(f"• run: {self.run_url}")
        return "\n".join(lines)

    def slack_payload(self) -> dict[str, Any]:
        fields = [{"type": "mrkdwn", "text": f"*{name}*\n{value}"} for name, value in self.details.items()]
        blocks: list[dict[str, Any]] = [
            {"type": "section", "text": {"type": "mrkdwn", "text": f"{ICONS.get(self.kind, '')} *{self.heading}*"}}
        ]
        if fields:
            blocks.append({"type": "section", "fields": fields[:10]})
        if self.run_url:
            blocks.append(
                {"type": "section", "text": {"type": "mrkdwn", "text": f"<{self.run_url}|Open the run in Dagster>"}}
            )
        return {
            "text": self.text(),
            "blocks": blocks,
            "kind": self.kind,
            "partition": self.partition,
            "source": self.source,
        }


def completion_alert(
    kind: str,
    partition: str,
    completed: int,
    expected: int,
    needed: int,
    error_classes: dict[str, int],
    run_url: str | None,
    projected: float | None = None,
    synced: tuple[int, int] | None = None,
) -> Alert:
    titles = {
        "short": f"Daily sync {partition} fell short: {completed} of {expected} batches completed by the deadline",
        "behind_pace": f"Daily sync {partition} is behind pace: {completed} of {expected} batches, cannot reach {needed} in time",
        "no_job_set": f"Daily sync {partition}: no job set was built by the deadline",
        "recovered": f"Daily sync {partition} recovered: {completed} of {expected} batches completed",
        "deferred": (
            f"Daily sync {partition}: its batches closed but only {synced[0] if synced else 0} of "
            f"{synced[1] if synced else 0} sub-jobs were synced; the rest went to the retry queue or the dead letter"
        ),
    }
    details: dict[str, Any] = {
        "partition": partition,
        "completed / expected": f"{completed} / {expected}",
        "needed": needed,
    }
    if projected is not None:
        details["projected by deadline"] = round(projected)
    if synced is not None:
        details["synced / sub-jobs"] = f"{synced[0]} / {synced[1]}"
    if error_classes:
        details["failing error classes"] = ", ".join(f"{cls} ({n})" for cls, n in error_classes.items())
    return Alert(kind, partition, titles[kind], details, run_url)
