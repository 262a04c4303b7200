"""A five-field cron expression (minute hour day-of-month month day-of-week), as a source's
schedule declares it: checked at load with what is wrong named, and asked when it first fires on
or after a day (the completion sensor's "when should this day's run have started").

The fields take ``*``, numbers, ranges ``a-b``, steps ``*/n`` and ``a-b/n``, and lists of them;
``@daily``, ``@hourly``, ``@weekly``, ``@monthly`` and ``@yearly`` stand for their expansions.
As in cron, a day fires when its day-of-month or its day-of-week matches, when both are
restricted. Dagster's scheduler reads the same expression (a test holds the two to agree).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

ALIASES = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}
FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12), ("day of week", 0, 7))


class CronError(ValueError):
    """A cron expression that cannot be read; the message says which field and why."""


@dataclass(frozen=True)
class Cron:
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday (7 read as 0)
    any_day: bool  # day of month was *
    any_weekday: bool  # day of week was *

    def fires_on(self, day: date) -> bool:
        if day.month not in self.months:
            return False
        by_day, by_weekday = day.day in self.days, (day.isoweekday() % 7) in self.weekdays
        if self.any_day or self.any_weekday:
            return by_day and by_weekday
        return by_day or by_weekday

    def first_on_or_after(self, day: date, within_days: int = 366 * 4) -> tuple[date, int, int] | None:
        """The first firing (day, hour, minute) on ``day`` or later, None when none is near."""
        for offset in range(within_days):
            candidate = day + timedelta(days=offset)
            if self.fires_on(candidate):
                return candidate, self.hours[0], self.minutes[0]
        return None


def parse_cron(expression: str) -> Cron:
    text = ALIASES.get(expression.strip().lower(), expression.strip())
    parts = text.split()
    if len(parts) != len(FIELDS):
        raise CronError(
            f"{expression!r} has {len(parts)} fields; a cron expression has 5 (minute hour day-of-month month "
            "day-of-week, e.g. '0 1 * * *' for 01:00 every day) or is one of " + ", ".join(sorted(ALIASES))
        )
    values = [_field(part, *spec) for part, spec in zip(parts, FIELDS, strict=True)]
    weekdays = frozenset(v % 7 for v in values[4])
    cron = Cron(
        tuple(sorted(values[0])),
        tuple(sorted(values[1])),
        frozenset(values[2]),
        frozenset(values[3]),
        weekdays,
        parts[2] == "*",
        parts[4] == "*",
    )
    if cron.first_on_or_after(date(2000, 1, 1)) is None:
        raise CronError(f"{expression!r} never fires (no month has that day)")
    return cron


def cron_problem(expression: str) -> str | None:
    try:
        parse_cron(expression)
    except CronError as exc:
        return str(exc)
    return None


def _field(text: str, name: str, low: int, high: int) -> set[int]:
    found: set[int] = set()
    for item in text.split(","):
        span, _, step_text = item.partition("/")
        try:
            step = int(step_text) if step_text else 1
            if span == "*":
                first, last = low, high
            elif "-" in span:
                a, b = span.split("-", 1)
                first, last = int(a), int(b)
            else:
                first = int(span)
                last = high if step_text else first
        except ValueError:
            raise CronError(f"{name} field {text!r}: {item!r} is not a number, range, step or *") from None
        if step < 1 or not (low <= first <= high and low <= last <= high) or first > last:
            raise CronError(f"{name} field {text!r}: {item!r} is outside {low}-{high} (or a step below 1)")
        found.update(range(first, last + 1, step))
    return found
