"""``dg`` as a front door: ``dg scaffold defs pipelines.components.RestSource <name>`` writes a
commented declaration that loads clean; the code location warns at load about a variable a source
reads and the environment does not set; ``dg check defs`` names every mistake by its key and line,
in the words of ``check_source``, with no traceback."""

import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import yaml
from jsonschema import Draft202012Validator

from pipelines.components.rest_source import DeclarationSchema
from pipelines.components.scaffold import source_name
from pipelines.definitions import build_defs
from pipelines.settings import Settings, SettingsWarning
from pipelines.source.declaration_file import load_declaration
from pipelines_tests.helpers import ROOT, SAMPLE_DECLARATION, SHOP_DECLARATION, dg_project

DG = Path(sys.executable).parent / "dg"


def dg(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess:
    environ = {**os.environ, "PYTHONPATH": str(cwd), **env}
    return subprocess.run(
        [str(DG), *args], cwd=cwd, env=environ, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL
    )


@pytest.mark.integration
def test_scaffold_writes_a_declaration_that_loads_and_dg_checks_it(tmp_path, monkeypatch):
    module = "scaffolded_sources"
    project = dg_project(tmp_path, module, {})
    done = dg(["scaffold", "defs", "pipelines.components.RestSource", "acme"], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    written = project / "defs" / "acme" / "defs.yaml"
    text = written.read_text()
    assert "# The source acme" in text and "python -m pipelines.check_source" in text and "dg launch" in text
    declared = load_declaration(written)  # as written, it loads clean: the user changes what differs
    assert declared.name == "acme" and declared.variables() == {"ACME_API_URL", "ACME_API_TOKEN"}

    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("ACME_API_URL", raising=False)
    monkeypatch.setenv("ACME_API_TOKEN", "tok-acme")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        defs = build_defs(Settings(warehouse_url=f"sqlite:///{tmp_path / 'wh.db'}"), project=project)
    said = [str(w.message) for w in caught if issubclass(w.category, SettingsWarning)]
    assert any("ACME_API_URL is not set, and source 'acme' reads it" in m for m in said), said
    assert not any("ACME_API_TOKEN" in m for m in said)
    assert defs.resolve_job_def("acme_daily_sync_job") is not None

    checked = dg(["check", "defs", "--use-active-venv"], tmp_path, ACME_API_URL="https://api.example")
    assert checked.returncode == 0 and "All definitions loaded successfully" in checked.stdout + checked.stderr


@pytest.mark.integration
def test_dg_check_defs_names_each_mistake_in_our_words_and_never_a_traceback(tmp_path):
    base = SAMPLE_DECLARATION.read_text()
    project = dg_project(tmp_path, "mistaken_sources", {"acme": base.replace("name: sample", "name: acme")})
    (project / "definitions.py").write_text(
        "from pathlib import Path\n\nfrom pipelines.definitions import load_code_location\n\n"
        "defs = load_code_location(Path(__file__).parent)\n"
    )
    acme = project / "defs" / "acme" / "defs.yaml"
    acme.write_text(base.replace("name: sample", "name: acme").replace("type: cursor", "type: link"))
    said = dg(["check", "defs", "--use-active-venv"], tmp_path)
    out = said.stdout + said.stderr
    line = next(n for n, text in enumerate(acme.read_text().splitlines(), 1) if "type: link" in text)
    assert said.returncode == 1 and f"defs.yaml:{line}" in out and "listing.paginator.type 'link' is not one of" in out
    assert "'cursor', 'header_cursor', 'link_header'" in out and "not valid under any of the given schemas" not in out

    acme.write_text(base.replace("name: sample", "name: acme").replace('path: "/items/{id}/details"', 'path: "/d"'))
    said = dg(["check", "defs", "--use-active-venv"], tmp_path)
    out = said.stdout + said.stderr
    assert said.returncode == 1 and "detail.path must contain the {id} placeholder" in out, out[-3000:]
    assert "Traceback" not in out and "Stack Trace" not in out and 'File "' not in out


def test_every_files_mistake_is_named_at_once_before_dagster_reads_any(tmp_path, monkeypatch):
    from pipelines.definitions import check_declarations

    base = SAMPLE_DECLARATION.read_text()
    project = dg_project(
        tmp_path,
        "two_mistakes",
        {
            "acme": "type: pipelines.components.RestSource\nattributes: [\n",
            "beta": base.replace("max_ids: 100", "max_ids: 0"),
        },
    )
    with pytest.raises(ValueError) as info:
        check_declarations(project)
    said = str(info.value)
    assert (
        "acme/defs.yaml: line 3: not valid YAML" in said and "beta/defs.yaml" in said and "bulk_probe.max_ids" in said
    )


def test_the_precise_schema_accepts_every_shipped_declaration_and_names_a_wrong_tag():
    schema = DeclarationSchema.model_json_schema()
    validator = Draft202012Validator(schema)
    for path in (SAMPLE_DECLARATION, SHOP_DECLARATION, ROOT / "docker/source.yaml"):
        doc = yaml.safe_load(path.read_text())
        assert list(validator.iter_errors(doc.get("attributes", doc))) == [], path
    doc = yaml.safe_load(SAMPLE_DECLARATION.read_text())["attributes"]
    doc["listing"]["paginator"]["type"] = "link"
    doc["client"]["auth"] = {"type": "bearer", "token_env": "X", "extra": 1}
    errors = {".".join(map(str, e.absolute_path)): e.message for e in validator.iter_errors(doc)}
    assert errors["listing.paginator.type"].startswith("'link' is not one of ['cursor'")
    assert "'extra' was unexpected" in errors["client.auth"]


@pytest.mark.parametrize(("folder", "name"), [("acme", "acme"), ("My-Shop", "my_shop"), ("9lives", "source_9lives")])
def test_a_folders_name_becomes_a_source_name(folder, name):
    assert source_name(folder) == name
