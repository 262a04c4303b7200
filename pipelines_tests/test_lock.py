"""The lock files pin every dependency pyproject.toml asks for, at a version it allows."""

import tomllib

import pytest
from packaging.requirements import Requirement

from pipelines_tests.helpers import ROOT


def pins(lock: str) -> dict[str, str]:
    found = {}
    for line in (ROOT / "requirements" / lock).read_text().splitlines():
        if "==" in line and not line.startswith(("#", " ")):
            name, version = line.split("==", 1)
            found[name.strip().lower().replace("_", "-")] = version.split()[0]
    return found


@pytest.mark.parametrize(("lock", "extra"), [("dev.lock", "dev"), ("deploy.lock", "deploy")])
def test_every_dependency_is_pinned_at_an_allowed_version(lock, extra):
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = [Requirement(r) for r in [*project["dependencies"], *project["optional-dependencies"][extra]]]
    pinned = pins(lock)
    for req in wanted:
        name = req.name.lower().replace("_", "-")
        assert name in pinned, f"{req.name} is not in requirements/{lock}: run make lock"
        assert req.specifier.contains(pinned[name], prereleases=True), (
            f"requirements/{lock} pins {req.name}=={pinned[name]}, outside {req.specifier}: run make lock"
        )
