"""What each strategy would cost a day, said before anything runs (issue 26.3)."""

from pipelines.check_source import main as check_source
from pipelines.source.declaration import declare
from pipelines.source.estimate import cheapest, estimates
from pipelines_tests.helpers import SAMPLE_DECLARATION

API = "https://api.example.com"


def by_strategy(declared, n=30_000, c=0.2):
    return {e.strategy: e for e in estimates(declared, n, c)}


def test_each_strategy_counts_its_probes_details_and_the_listings_pages():
    rows = by_strategy(declare(API))  # the default contract: probe, bulk probe, listing of ids
    assert rows["projected"].calls == 30_000 + 6_000 + 60  # a probe an id, a detail a change, the watchlist's pages
    assert rows["conditional"].calls == rows["projected"].calls
    assert rows["bulk"].calls == 300 + 6_000 + 60
    assert rows["listing"].calls is None and "listing.fields (id) lacks version" in rows["listing"].why_not
    assert cheapest(list(rows.values())).strategy == "bulk"


def test_a_listing_that_carries_the_fingerprint_and_the_details_is_named_cheapest():
    fields = {"listing.fields": ["id", "version", "updated_at"]}
    rows = by_strategy(declare(API, fields))
    assert rows["listing"].calls == 60 + 6_000  # its pages are the probe; a detail a change
    filtered = by_strategy(
        declare(API, {**fields, "listing.changed_since": {"param": "updated_since", "reconcile_every_days": 7}})
    )
    assert filtered["changed_since"].calls == round((60 + 6 * 12) / 7) + 6_000  # a full listing a week
    embedded = {"carried_by": "listing", "params": {"embed": "details"}, "path": "details", "max_bytes": 16_384}
    rows = by_strategy(declare(API, {**fields, "probe.strategy": "listing", "detail.embedded": embedded}))
    assert rows["listing"].calls == 60 and "no detail call" in rows["listing"].note
    assert rows["bulk"].calls == 300 + 6_000 + 60  # the listing carries details only as the probe
    assert cheapest(list(rows.values())).strategy == "listing"
    assert rows["listing"].cost == 60 / 1000  # at the default price, 1.0 a thousand


def test_check_source_prints_the_estimate_and_the_cheapest(capsys):
    assert check_source([str(SAMPLE_DECLARATION), "--ids", "2000", "--changed", "0.1"]) == 0
    out = capsys.readouterr().out
    assert "a day of 2,000 tracked ids, 10% changed" in out
    assert "bulk" in out and "<- cheapest" in out and "bulk would cost less (probe.strategy)" in out


def test_the_ui_shows_it_with_the_sources_assets():
    from dagster import AssetKey

    from pipelines.definitions import defs

    synced = defs().resolve_assets_def(AssetKey(["sample", "synced_resources"]))
    shown = synced.metadata_by_key[synced.key]["cost_by_strategy"].value
    assert "What a day of 30,000 tracked ids, 20% changed, costs" in shown and "**cheapest**" in shown
