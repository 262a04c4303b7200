"""Dagster components of this project: ``pipelines.components.RestSource``."""

from pipelines.components.rest_source import RestSource

__all__ = ["RestSource"]
