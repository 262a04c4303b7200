"""The code location: ``dagster dev -m pipelines.definitions`` (or workspace.yaml).

Its sources are components (``pipelines/defs/<name>/defs.yaml``, loaded with
``load_from_defs_folder``), or the one source the environment configures; the warehouse, the IO
manager and the executor are the deployment's, set once here for every source."""

from __future__ import annotations

import importlib
import os
import sys
import tomllib
import warnings
from collections.abc import Iterable
from pathlib import Path

import yaml
from dagster import ComponentTree, Definitions, definitions, load_from_defs_folder

from pipelines.retired_variables import check_environment
from pipelines.settings import Settings, SettingsError, SettingsWarning, load_settings
from pipelines.source.declaration_file import DeclarationError
from pipelines.source.yaml_screen import UnsafeYaml, screen_file
from pipelines.sync.budgets import check_budgets
from pipelines.sync.executors import executor_for
from pipelines.sync.io_manager import WarehouseIOManager
from pipelines.sync.resources import DeclaredSource, WarehouseResource, declaration_of, declared_source, from_env
from pipelines.sync.source_defs import source_definitions
from pipelines.warehouse.connect import default_schema


def single_source(settings: Settings) -> DeclaredSource:
    """The one source of a deployment configured by SOURCE_DECLARATION (secrets stay EnvVar,
    never displayed)."""
    limiter = from_env("SOURCE_RATE_LIMITER_URL", settings.source_rate_limiter_url)
    return declared_source(str(settings.source_declaration), rate_limiter_url=limiter)


def build_resources(settings: Settings) -> dict[str, object]:
    """The deployment's resources, shared by every source (secrets stay EnvVar, never displayed)."""
    warehouse_url = from_env("WAREHOUSE_URL", settings.warehouse_url)
    return {
        "warehouse": WarehouseResource(url=warehouse_url),
        # what a step hands the next goes through the warehouse: steps may run on any worker
        "io_manager": WarehouseIOManager(url=warehouse_url),
    }


PROJECT = Path(__file__).parent


def build_sources(settings: Settings, project: Path = PROJECT) -> Definitions:
    """The sources. Configured by environment (``SOURCE_DECLARATION``): that one source, under
    the names a single-source deployment always had. Otherwise every source declared as a
    ``RestSource`` component under ``pipelines/defs/`` (the embedded sample's ships there), each
    under its own name. Either way the environment is then checked against what they read: a
    retired flat variable none reads stops the load (``check_environment``)."""
    if settings.configured_by_environment():
        source = single_source(settings)
        check_environment(os.environ, source.declaration().variables())
        warn_unset([source])
        return source_definitions(None, source)
    check_declarations(project)
    sources = load_components(project)
    apis = {key: api for key, api in (sources.resources or {}).items() if isinstance(api, DeclaredSource)}
    check_environment(os.environ, {name for api in apis.values() for name in api.declaration().variables()})
    warn_unset(apis.values())
    check_names(apis, settings.warehouse_url)
    check_budgets(apis)
    return sources


def check_declarations(project: Path) -> None:
    """Every source component's ``defs.yaml`` screened and read by our loader before Dagster's
    sees it: each mistake of every file named at once, in the words of ``check_source`` (file,
    line, key, what was expected)."""
    problems: list[ValueError] = []
    for defs_yaml in sorted((project / "defs").rglob("defs.yaml")):
        try:
            doc = yaml.safe_load(screen_file(defs_yaml))  # screened before any loader sees it
            if isinstance(doc, dict) and str(doc.get("type", "")).endswith(".RestSource"):  # ours, not another kind
                declaration_of(str(defs_yaml))
        except (UnsafeYaml, DeclarationError) as exc:
            problems.append(exc)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" line {mark.line + 1}:" if mark is not None else ""
            problems.append(DeclarationError(f"{defs_yaml}:{where} not valid YAML: {getattr(exc, 'problem', exc)}"))
    if problems:  # raised as the first one's kind
        raise type(problems[0])("\n".join(str(problem) for problem in problems))


def warn_unset(apis: Iterable[DeclaredSource]) -> None:
    """Say at load which variable a source over HTTP reads and the environment does not set:
    the code location loads (another process may run it), but this one's runs of it would stop."""
    for api in apis:
        declared = api.declaration()
        webhook = declared.operations.alerts.webhook_url_env
        for name in sorted(declared.variables()):
            if os.environ.get(name):
                continue
            if name == webhook:
                why = "its alert webhook): its alerts go to the log and the alerts table only until it is"
            elif declared.embedded:
                continue  # the sample takes a credential only when given one
            else:
                why = "its URL, credential or proxy): its runs stop until it is"
            warnings.warn(
                f"{api.declaration_file}: {name} is not set, and source {declared.name!r} reads it ({why}",
                SettingsWarning,
                stacklevel=2,
            )


def check_names(apis: dict[str, DeclaredSource], warehouse_url: str) -> None:
    """No source is named like the schema the warehouse's connection writes to by default: it
    would share the tables of a source configured by environment."""
    shared = default_schema(warehouse_url)
    for api in apis.values():
        name = api.declaration().name
        if name == shared:
            raise SettingsError(
                f"{api.declaration_file}: name: {name!r} is the schema WAREHOUSE_URL's connection writes to by default "
                "(its user's, or its search_path's): the source would share another's tables; name it otherwise"
            )


def load_components(project: Path) -> Definitions:
    """The components of the dg project ``project`` is in. Installed as a package (the Docker
    image), this project has no pyproject.toml beside it: its defs module is ``pipelines.defs``."""
    if any(_is_dg_project(folder) for folder in (project, *project.parents)):
        return load_from_defs_folder(path_within_project=project)
    if project != PROJECT:
        raise FileNotFoundError(f"{project}: not inside a dg project (a pyproject.toml with [tool.dg])")
    defs_module = importlib.import_module("pipelines.defs")
    return ComponentTree.from_module(defs_module=defs_module, project_root=PROJECT.parent).build_defs()


def _is_dg_project(folder: Path) -> bool:
    pyproject = folder / "pyproject.toml"
    return pyproject.is_file() and "dg" in tomllib.loads(pyproject.read_text()).get("tool", {})


def build_defs(settings: Settings, project: Path = PROJECT) -> Definitions:
    """The code location: ``project``'s sources (a folder inside a dg project, whose
    ``[tool.dg]`` names its defs module) and the deployment's resources and executor."""
    return Definitions.merge(
        build_sources(settings, project),
        Definitions(resources=build_resources(settings), executor=executor_for(settings)),
    )


def load_code_location(project: Path = PROJECT) -> Definitions:
    """The code location the environment configures. A user's mistake (a setting, a declaration)
    stops it with its own words; under ``dg check defs`` (which sets DAGSTER_IS_DEFS_VALIDATION_CLI)
    those words alone, and exit status 1: a mistake in a YAML file is no traceback."""
    try:
        return build_defs(load_settings(), project)
    except (SettingsError, DeclarationError, UnsafeYaml) as exc:
        if not os.environ.get("DAGSTER_IS_DEFS_VALIDATION_CLI"):
            raise
        print(exc, file=sys.stderr)
        raise SystemExit(1) from None


@definitions
def defs() -> Definitions:
    """The code location, built when Dagster loads it, not when this module is imported: the
    settings and the declarations are read then, and a test or tool may import this module
    under any environment."""
    return load_code_location()
