"""make lint's checks, run by the suite too, so CI enforces them: ruff, and mypy on pipelines/."""

import subprocess
import sys
from pathlib import Path

import pytest

from pipelines_tests.helpers import ROOT

BIN = Path(sys.executable).parent


@pytest.mark.parametrize(
    "command",
    [
        ["ruff", "check", "pipelines", "pipelines_tests"],
        ["ruff", "format", "--check", "pipelines", "pipelines_tests"],
        ["mypy"],  # [tool.mypy] in pyproject.toml: pipelines/, the pydantic plugin
    ],
    ids=["ruff-check", "ruff-format", "mypy"],
)
def test_lint_is_clean(command):
    proc = subprocess.run([str(BIN / command[0]), *command[1:]], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
