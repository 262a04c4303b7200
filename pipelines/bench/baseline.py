"""The commit before issue 14, checked out beside this one, to measure against in the same run
(the machine's speed moves by a factor of two from one day to the next, so a figure taken on
another day is no baseline): ``make demo`` (target 4) and the 10x day (target 2) run once from
a git worktree of ``BASELINE`` and once from this checkout.

Needs the project's git checkout (the baseline is read from its history); from an installed
package ``worktree()`` yields None and the sections say so and measure nothing.
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

BASELINE = "e829061"  # the last commit before issue 14's first change (6131d47)
ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def worktree() -> Iterator[Path | None]:
    """A worktree of ``BASELINE`` (removed after), or None outside a git checkout. A process
    started there with ``python -m`` imports the baseline's ``pipelines`` (the current
    directory comes first on the path; the editable install's finder comes after it)."""
    if not (ROOT / ".git").exists():
        yield None
        return
    with tempfile.TemporaryDirectory(prefix="bench-baseline-") as tmp:
        tree = Path(tmp) / "baseline"
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), BASELINE],
            check=True,
            capture_output=True,
        )
        try:
            yield tree
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], check=False)
