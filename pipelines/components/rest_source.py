"""``RestSource``: one REST API, declared in a ``defs.yaml`` (docs/sources.md), as a Dagster
component.

    # pipelines/defs/shop/defs.yaml
    type: pipelines.components.RestSource
    attributes:
      name: shop
      client: {base_url_env: SHOP_URL, auth: {type: api_key, name: X-Shop-Access-Token, key_env: SHOP_TOKEN}}
      ...

The attributes are the source declaration itself: ``dg check defs`` validates them against its
schema, and loading reads them with the declaration's own loader, so a mistake is refused naming
the file, the line, the key and what was expected. What it makes: ``<name>/watchlist`` ...
``<name>/dead_letter`` in group ``<name>``, their checks, ``<name>_daily_sync_job`` and its
schedule, ``<name>_completion_sensor``, ``<name>_run_failure_alert_sensor``,
``<name>_replay_dead_letters``, and the API client as resource ``<name>_api`` (an ``HttpSource``,
or an ``EmbeddedSample`` when the declaration says ``client.sample``); its rows live in
the warehouse's ``<name>`` namespace. The deployment's own resources (the warehouse, the IO
manager) and executor come from ``pipelines/definitions.py``, once for every source.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dagster import Component, ComponentLoadContext, Definitions
from dagster.components import scaffold_with
from pydantic import BaseModel

from pipelines.components.scaffold import RestSourceScaffolder
from pipelines.components.schema import precise
from pipelines.settings import load_settings
from pipelines.source.declaration import SourceDeclaration
from pipelines.sync.resources import declaration_of, declared_source, from_env
from pipelines.sync.source_defs import source_definitions


class DeclarationSchema(SourceDeclaration):
    """The declaration as ``dg check defs`` validates a ``defs.yaml`` against it (``schema.py``)."""

    @classmethod
    def model_json_schema(cls, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return precise(super().model_json_schema(*args, **kwargs))


@scaffold_with(RestSourceScaffolder)
class RestSource(Component):
    """A REST API source declared in YAML: its daily assets, checks, jobs, schedule and sensors."""

    def __init__(self, declaration_file: Path, declaration: SourceDeclaration) -> None:
        self.declaration_file = declaration_file
        self.declaration = declaration

    @classmethod
    def get_model_cls(cls) -> type[BaseModel]:
        return DeclarationSchema

    @classmethod
    def load(cls, attributes: BaseModel | None, context: ComponentLoadContext) -> RestSource:
        path = context.path / "defs.yaml" if context.path.is_dir() else context.path
        return cls(path, declaration_of(str(path)))  # our loader: file, line and key in any error

    def build_defs(self, context: ComponentLoadContext) -> Definitions:
        # the declaration says how the API is spoken; where the shared rate lives is the deployment's
        limiter = from_env("SOURCE_RATE_LIMITER_URL", load_settings().source_rate_limiter_url)
        api = declared_source(self.declaration_file, rate_limiter_url=limiter)
        return source_definitions(self.declaration.name, api)
