"""A backfill cannot spend many days' calls by accident. Pure.

The API serves only its present: syncing a day older than the newest day already synced pays a
whole day of calls (a probe a resource at least) to learn what the newest day already knows,
and writes it under the wrong date. So such a day makes no call unless the run opts in; nor
does a day older than the source's ``spend.max_age_days``. A day that was started before (its
job set is built) is finished without opting in: what is left of it is bounded, and a run
retried after a crash must not be refused.
"""

from __future__ import annotations

from datetime import date

OPT_IN_TAG = "pipelines/sync_past_day"  # a run tag: "true" lets it sync a past day


def past_day_problem(
    day: date, newest_synced: date | None, today: date, max_age_days: int | None, started: bool = False
) -> str | None:
    """Why a run of ``day`` must not call the API unless opted in (None: it may). ``started``:
    the day's job set was built by an earlier run."""
    if started:
        return None
    if newest_synced is not None and day < newest_synced:
        return (
            f"{day} is older than {newest_synced}, the newest day already synced: the API serves only its present, "
            "so syncing it would pay a whole day of calls to learn nothing newer"
        )
    if max_age_days is not None and (today - day).days > max_age_days:
        return (
            f"{day} is {(today - day).days} days old, older than spend.max_age_days ({max_age_days}): "
            "a day that old is not synced by accident"
        )
    return None


def opted_in(tags: dict[str, str]) -> bool:
    return tags.get(OPT_IN_TAG, "").strip().lower() in ("true", "1", "yes")
