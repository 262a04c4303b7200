"""Source declarations: the shipped ones load, and every mistake is refused at load with its key,
its line and what was expected. Pure: no server, no Dagster."""

import re

import pytest
import yaml

from pipelines.source.config import MissingSecretError, resolve_credentials
from pipelines.source.declaration import SourceDeclaration, declare
from pipelines.source.declaration_file import DeclarationError, load_declaration, parse_declaration
from pipelines_tests.helpers import ROOT

SAMPLE = ROOT / "pipelines/defs/sample/defs.yaml"
SHOP = ROOT / "examples/sample_shop.yaml"


def test_the_shipped_declarations_load():
    items, shop = load_declaration(SAMPLE), load_declaration(SHOP)
    assert (items.name, items.id.type, items.fingerprint, items.detail.shape) == (
        "sample",
        "string",
        ["version"],
        "object",
    )
    assert (shop.name, shop.id.type, shop.fingerprint, shop.detail.shape) == ("shop", "integer", ["updated_at"], "list")
    assert shop.bulk_probe is not None and shop.bulk_probe.missing_selector is None
    assert shop.listing is not None and shop.listing.paginator.type == "link_header"
    assert shop.conditional is None and shop.cost.detail == 2.0


def test_the_default_declaration_is_the_documented_api():
    source = declare("http://api.example")
    assert source.probe.path == "/items/{id}" and source.detail.path == "/items/{id}/details"
    assert source.listing is not None and source.listing.paginator.type == "cursor"


def edited(path, edit) -> str:
    """The declaration at ``path`` as YAML text, its attributes changed by ``edit``."""
    doc = yaml.safe_load(path.read_text())
    edit(doc)
    return yaml.safe_dump(doc, sort_keys=False)


def refused(text: str) -> str:
    with pytest.raises(DeclarationError) as caught:
        parse_declaration(text, "shop.yaml")
    return str(caught.value)


def test_a_typo_is_named_with_its_key_and_line():
    text = SHOP.read_text().replace("  shape: list", "  shap: list")
    message = refused(text)
    line = next(i for i, s in enumerate(text.splitlines(), 1) if "shap: list" in s)
    assert f"line {line}: detail.shap: is not a key of this section" in message


@pytest.mark.parametrize(
    ("edit", "key", "expected"),
    [
        (lambda a: a["listing"]["paginator"].update(type="link"), "listing.paginator", "link_header"),
        (lambda a: a["client"]["auth"].update(token_env="shpat_1234-secret"), "client.auth.token_env", "NAME of an"),
        (lambda a: a["probe"].update(path="/v1/products/{product_id}.json"), "", "{product_id}"),
        (lambda a: a["detail"].update(path="/v1/metafields.json"), "", "must contain the {id} placeholder"),
        (lambda a: a["probe"].update(fields=["id"]), "", "lacks updated_at"),
        (lambda a: a["client"].update(base_url="https://u:pw@shop.example"), "client.base_url", "without credentials"),
        (lambda a: a["client"].update(base_url="https://shop.example"), "client", "exactly one of"),
        (lambda a: a.update(errors={"transient": [503], "gone": [404, 503]}), "errors", "503 is in both"),
        (lambda a: a.update(bulk_probe=None), "", "declare the bulk probe"),
        (lambda a: a["id"].update(type="uuid"), "id.type", "'string' or 'integer'"),
        (lambda a: a["rate"].update(max_concurrency=0), "rate.max_concurrency", "greater than or equal to 1"),
        (lambda a: a.update(name="Shop-1"), "name", "lower-case"),
        (lambda a: a["client"].update(headers={"Authorization": "Bearer x"}), "client.headers", "under auth"),
    ],
)
def test_a_mistake_is_refused_naming_the_key_and_what_was_expected(edit, key, expected):
    message = refused(edited(SHOP, edit))
    assert expected in message
    assert f": {key}:" in message if key else "(the declaration)" in message
    assert "shpat_1234-secret" not in message  # a secret written where a name belongs is never echoed


def test_a_yaml_syntax_error_names_its_line():
    message = refused("name: shop\nclient: {sample: {}\nid: x\n")
    assert "line 3" in message and "not valid YAML" in message


def test_every_problem_is_named_at_once():
    message = refused(edited(SHOP, lambda a: (a["id"].update(kind="x"), a["rate"].update(max_concurrency=-1))))
    assert "id.kind" in message and "rate.max_concurrency" in message


def test_a_declaration_inside_a_dagster_defs_yaml_loads_too():
    doc = yaml.safe_load(SHOP.read_text())
    wrapped = {"type": "pipelines.components.RestSource", "attributes": doc}
    assert parse_declaration(yaml.safe_dump(wrapped)) == SourceDeclaration.model_validate(doc)


@pytest.mark.parametrize("path", sorted([SAMPLE, *ROOT.glob("examples/*.yaml")]), ids=lambda p: p.stem)
def test_every_shipped_declaration_checks_clean(path, capsys):
    from pipelines.check_source import main

    assert main([str(path)]) == 0
    assert f"source {load_declaration(path).name!r}" in capsys.readouterr().out


def test_the_checker_exits_1_naming_the_mistake(tmp_path, capsys):
    from pipelines.check_source import main

    bad = tmp_path / "bad.yaml"
    bad.write_text(SHOP.read_text().replace("type: link_header", "type: links"))
    assert main([str(bad)]) == 1
    assert "listing.paginator" in capsys.readouterr().err


def test_the_listing_strategies_need_a_listing_that_carries_the_fingerprint():
    message = refused(edited(SHOP, lambda a: a["probe"].update(strategy="listing")))
    assert "listing.fields (id) lacks updated_at" in message
    message = refused(
        edited(
            SHOP,
            lambda a: (a["probe"].update(strategy="changed_since"), a["listing"].update(fields=["id", "updated_at"])),
        )
    )
    assert "listing.changed_since is null" in message


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("probe.strategy", "psychic", "Input should be 'projected'"),
        ("probe.path", "/items", "probe.path must contain the {id} placeholder"),
        ("fingerprint", [], "at least 1 item"),
        ("rate.requests_per_second", -1, "greater than or equal to 0"),
        ("rate.requests_per_second", float("nan"), "rate.requests_per_second"),
        # values that overflow later (timedelta, sleeps) are refused now
        ("client.breaker.hold", 1e12, "less than or equal to 86400"),
        ("client.timeouts.read", float("inf"), "less than or equal to 3600"),
        ("client.timeouts.deadline", 0, "greater than 0"),
        ("client.max_response_bytes", 10, "greater than or equal to 1024"),
        # placeholders nobody fills
        ("probe.path", "/items/{ids}", "probe.path has the placeholder(s) {ids}"),
        ("detail.path", "/items/{id}/{tenant}", "detail.path has the placeholder(s) {tenant}"),
        ("probe.path", "/items/{id!r}", "probe.path has the placeholder(s) {id!r}"),
        ("listing.path", "/items/{id}", "listing.path has the placeholder(s) {id}; it takes none"),
        ("bulk_probe.path", "/items/{id}", "bulk_probe.path has the placeholder(s) {id}; it takes none"),
        ("probe.path", "items/{id}", "probe.path must start with /"),
        ("rate.min_concurrency", 32, "min_concurrency (32) exceeds max_concurrency (16)"),
    ],
)
def test_a_value_that_would_fail_later_is_refused_at_load_naming_its_key(key, value, expected):
    with pytest.raises(ValueError, match=re.escape(expected)) as info:
        declare("https://api.example", {key: value})
    assert key.rsplit(".", 1)[0] in str(info.value)


@pytest.mark.parametrize("url", ["", "   ", "api.example.com/v1"])
def test_a_url_that_is_no_url_is_refused_not_taken_for_the_sample(url):
    with pytest.raises(ValueError, match="(?s)client.base_url.*must be an http:// or https:// URL"):
        SourceDeclaration.model_validate({"name": "acme", "client": {"base_url": url}})


@pytest.mark.parametrize(
    ("fields", "fingerprint", "missing"),
    [
        (["version", "updated_at"], ["version"], "id"),
        (["id", "version"], ["versoin"], "versoin"),
        (["id"], ["version"], "version"),
    ],
)
def test_the_probe_must_bring_the_id_and_the_fingerprint(fields, fingerprint, missing):
    with pytest.raises(ValueError, match=rf"probe.fields \(.*\) lacks {missing}"):
        declare("https://api.example", {"probe.fields": fields, "fingerprint": fingerprint})


@pytest.mark.parametrize("token", ["tok with space", "tok\nnewline", "tok\x7fdel", "tok\ttab", "tökén", " leading"])
def test_a_token_no_header_can_carry_is_refused_naming_its_variable_without_showing_it(token):
    source = declare("https://api.example", {"client.auth": {"type": "bearer", "token_env": "ACME_TOKEN"}})
    with pytest.raises(MissingSecretError, match="ACME_TOKEN") as info:
        resolve_credentials(source, {"ACME_TOKEN": token})
    assert token not in str(info.value) and token.strip() not in str(info.value)
