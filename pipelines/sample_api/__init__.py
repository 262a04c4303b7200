"""The bundled sample source API (docs/source-api.md): deterministic, with knobs and counters."""

from pipelines.sample_api.app import SampleApi, create_app
from pipelines.sample_api.config import SampleApiConfig
from pipelines.sample_api.world import World

__all__ = ["SampleApi", "SampleApiConfig", "World", "create_app"]
