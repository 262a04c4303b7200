"""Namespaces and declarations cannot collide or hang: YAML screened before any loader sees it
(size, anchors, repeated keys, control characters), names the database keeps for itself
refused, a namespace owned by the source that first wrote it, a watchlist CSV belonging to one
source, and settings that cannot work refused at load, named."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from pipelines.settings import Settings, SettingsError
from pipelines.source.declaration_file import DeclarationError, load_declaration, parse_declaration
from pipelines.warehouse.halts import SourceMismatchError
from pipelines.warehouse.store import Warehouse, create_warehouse_engine
from pipelines_tests.helpers import ROOT, dg_project, source_file

GOOD = (ROOT / "examples" / "sample_shop.yaml").read_text()


def with_header(name: str, value: str) -> str:
    """The shop declaration with one more static header of the client, written as given."""
    return GOOD.replace(
        "  headers: {Accept: application/json}", f"  headers: {{Accept: application/json, {name}: {value}}}", 1
    )


def refused(text: str) -> str:
    with pytest.raises(DeclarationError) as caught:
        parse_declaration(text, "shop.yaml")
    return str(caught.value)


def test_an_anchor_bomb_is_refused_at_once_naming_its_line(tmp_path):
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(9)
    )
    path = tmp_path / "bomb.yaml"
    path.write_text(GOOD + bomb)
    started = time.monotonic()
    with pytest.raises(DeclarationError, match=r"bomb.yaml: line \d+: an anchor"):
        load_declaration(path)
    assert time.monotonic() - started < 1


def test_a_huge_file_is_refused_before_it_is_parsed(tmp_path):
    path = tmp_path / "huge.yaml"
    path.write_text(GOOD + "# " + "x" * (10 << 20) + "\n")
    started = time.monotonic()
    with pytest.raises(DeclarationError, match=r"huge.yaml: 10,4\d\d,\d{3} bytes, more than a declaration's 1,048,576"):
        load_declaration(path)
    assert time.monotonic() - started < 1


def test_a_repeated_key_is_refused_naming_both_lines():
    message = refused(GOOD + "name: other\n")
    assert "the key 'name' is given twice (first on line 4)" in message


@pytest.mark.parametrize(
    ("text", "said"),
    [
        (GOOD.replace("name: shop", 'name: "shop\\n"'), "holds the control character '\\n'"),
        (with_header('"X-A\\r\\nX-Injected"', '"1"'), "control character"),
        (with_header("X-Api-Version", '"2024\\r\\nX-Injected: 1"'), "control character"),
        (GOOD + "bad: \x00\n", "holds the control character '\\x00'"),
    ],
)
def test_control_characters_are_refused_named_by_line(text, said):
    message = refused(text)
    assert said in message and "line" in message


@pytest.mark.parametrize("name", ["public", "information_schema", "pg_catalog", "pg_temp_1", "pg_toast"])
def test_names_the_database_keeps_for_itself_are_refused(name):
    message = refused(GOOD.replace("name: shop", f"name: {name}"))
    assert "a schema the database keeps for itself" in message


def test_a_header_name_that_is_no_token_is_refused():
    assert "is not an HTTP header name" in refused(with_header('"X Bad Name"', '"1"'))


def test_a_namespace_belongs_to_the_source_that_first_wrote_it(sqlite_warehouse_url):
    store = Warehouse(create_warehouse_engine(sqlite_warehouse_url, "shop"))
    store.runs.claim_source("https://shop.example.com", "shop")
    store.runs.claim_source("https://shop.example.com", "shop")  # itself, again: fine
    with pytest.raises(SourceMismatchError, match="these tables belong to shop, not to other"):
        store.runs.claim_source("https://shop.example.com", "other")
    env = Warehouse(create_warehouse_engine(sqlite_warehouse_url))
    env.runs.claim_source("https://api.example.com", None)
    with pytest.raises(SourceMismatchError, match=r"belong to \(the source configured by environment\)"):
        env.runs.claim_source("https://api.example.com", "public_like")


def _project(tmp_path: Path, monkeypatch, sources: dict[str, str]) -> Path:
    """A team's dg project of these sources, importable (a module name of its own per test)."""
    monkeypatch.syspath_prepend(str(tmp_path))
    return dg_project(tmp_path, f"team_{tmp_path.name.replace('-', '_')[-20:]}", sources)


def _component(name: str, extra: str = "") -> str:
    return (
        "type: pipelines.components.RestSource\nattributes:\n"
        f"  name: {name}\n  client: {{sample: {{profile: items, resources: 10}}}}\n{extra}"
    )


def test_a_source_named_like_the_warehouses_own_schema_is_refused_at_load(tmp_path, monkeypatch):
    from pipelines.definitions import build_defs

    project = _project(tmp_path, monkeypatch, {"postgres": _component("postgres")})
    settings = Settings(warehouse_url="postgresql+psycopg2://postgres@127.0.0.1:5432/wh")
    with pytest.raises(SettingsError, match="name: 'postgres' is the schema WAREHOUSE_URL's connection writes to"):
        build_defs(settings, project=project)


def test_a_defs_yaml_bomb_stops_the_code_location_at_once_naming_the_file(tmp_path, monkeypatch):
    from pipelines.definitions import build_defs
    from pipelines.source.yaml_screen import UnsafeYaml

    bomb = _component("bombed") + "  headers: &h {A: '1'}\n"
    project = _project(tmp_path, monkeypatch, {"bombed": bomb})
    started = time.monotonic()
    with pytest.raises(UnsafeYaml, match=r"bombed/defs.yaml: line 5: an anchor"):
        build_defs(Settings(), project=project)
    assert time.monotonic() - started < 5


def test_watchlist_csv_belongs_to_one_source(tmp_path, monkeypatch):
    """A watchlist CSV is a source's own (its declaration's watchlist_csv); the retired
    WATCHLIST_CSV is refused, naming the command that moves it into the declaration."""
    from pipelines.definitions import build_defs

    csv = tmp_path / "ids.csv"
    csv.write_text("resource_id\nr0000001\n")
    two = _component("two", "  watchlist_csv: ../../../ids.csv\n")
    project = _project(tmp_path, monkeypatch, {"one": _component("one"), "two": two})
    monkeypatch.setenv("WATCHLIST_CSV", str(csv))
    with pytest.raises(SettingsError, match="WATCHLIST_CSV: retired.*pipelines.retired_variables"):
        build_defs(Settings(), project=project)
    monkeypatch.delenv("WATCHLIST_CSV")
    defs = build_defs(Settings(), project=project)
    assert defs.resolve_job_def("two_daily_sync_job") is not None
    assert Path(defs.resources["two_api"].watchlist_csv()).resolve() == csv.resolve()
    assert defs.resources["one_api"].watchlist_csv() is None


def test_unreadable_settings_are_refused_at_load_named(tmp_path, monkeypatch):
    from pipelines.settings import load_settings

    bad = tmp_path / "ids.csv"
    bad.write_text('resource_id\n"unterminated\nr2\n')
    for name, value, said in (
        ("WAREHOUSE_URL", "sqlitegarbage", "WAREHOUSE_URL: must be a sqlite:///path or postgresql://"),
        ("WAREHOUSE_URL", "sqlite://", "WAREHOUSE_URL: names no SQLite file"),
    ):
        monkeypatch.setenv(name, value)
        load_settings.cache_clear()
        with pytest.raises(SettingsError, match=said.replace("(", r"\(").replace(")", r"\)")):
            load_settings()
        monkeypatch.delenv(name)
    load_settings.cache_clear()
    assert sa.engine.make_url(load_settings().warehouse_url).drivername == "sqlite"


def test_an_unreadable_watchlist_csv_stops_the_load_named(tmp_path):
    """The one source's declaration names a CSV that cannot be read: the load stops, naming the
    declaration's key and what is wrong with the file."""
    from pipelines.definitions import build_defs

    bad = tmp_path / "ids.csv"
    bad.write_text('resource_id\n"unterminated\nr2\n')
    declared = source_file(None, {"watchlist_csv": str(bad)})
    with pytest.raises(ValueError, match=rf"{declared.name}: watchlist_csv .*not a readable CSV: EOF inside string"):
        build_defs(Settings(source_declaration=str(declared)), project=tmp_path)
