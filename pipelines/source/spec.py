"""What every part of a source declaration shares: a frozen model that refuses unknown keys, and
a field holding the name of an environment variable (never its value)."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from pipelines.source.credentials import variable_problem


def _env_name(value: str) -> str:
    problem = variable_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


class Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


EnvName = Annotated[str, AfterValidator(_env_name), Field(description="the NAME of an environment variable")]
