"""A listing walk's account, once it ends: written down for the watchlist's check, its refused
items named, and an incomplete listing said loudly (the log and one alert a day)."""

from __future__ import annotations

from datetime import date

from pipelines.alerting.channel import AlertRoute, send_once
from pipelines.alerting.messages import Alert
from pipelines.source.listing_account import ListingAccount
from pipelines.warehouse.store import Warehouse


def close_listing(log, store: Warehouse, account: ListingAccount, day: date, run_id: str, route: AlertRoute) -> None:
    store.listings.record_listing_account(day, run_id, account.figures(), account.refused_sample)
    for shown, problem in account.refused_sample:
        log.warning(f"listing: refused the item {shown}: it {problem}")
    if account.refused > len(account.refused_sample):
        log.warning(f"listing: {account.refused - len(account.refused_sample)} more items refused")
    if account.complete:
        log.info(account.verdict())
        return
    log.error(account.verdict() + ". It deactivates nothing; the day's next run lists again")
    details: dict[str, object] = {
        "partition": day.isoformat(),
        "run id": run_id,
        "why": "; ".join(account.problems())[:900],
        "listed": f"{account.distinct} ids in {account.pages} pages",
    }
    if account.stated_total is not None:
        details["stated total"] = account.stated_total
    title = f"The listing of {day} is incomplete: nothing is deactivated, the next run lists again"
    alert = Alert("listing_incomplete", day.isoformat(), title, details, source=route.source)
    send_once(alert, store, route.webhook_url(), log)
