"""The README's first command's program, run as a user would (small N to keep CI quick)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_demo_materialises_two_days_and_prints_the_summary(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "pipelines.demo", "--resources", "800", "--dir", str(tmp_path / "demo")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert "2026-01-01" in out and "2026-01-02" in out
    lines = {line.split("  ")[0]: line for line in out.splitlines()}
    assert lines["sub-jobs"].split()[-2:] == ["800", "800"]
    assert lines["batches completed"].split()[-2:] == ["8/8", "8/8"]
    made = [int(v.replace(",", "")) for v in lines["API calls made"].split()[-2:]]
    assert made[0] == 1_600 and 800 < made[1] < 1_000  # day 2: 800 probes + ~20% details
    assert (tmp_path / "demo" / "warehouse.db").exists()
    assert "batches" in proc.stderr  # the progress bar
