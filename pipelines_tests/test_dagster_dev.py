"""``dagster dev`` serves the code location: its webserver answers GraphQL with our assets."""

import subprocess
import sys
from pathlib import Path

from pipelines_tests.helpers import ROOT, DagsterDev


def test_dagster_dev_serves_the_assets_and_their_lineage(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text((ROOT / "dagster.yaml").read_text())
    dev = DagsterDev(home, {"WAREHOUSE_URL": f"sqlite:///{tmp_path / 'wh.db'}"}, tmp_path / "dev.log")
    try:
        nodes = dev.wait_for_assets()
    finally:
        dev.stop()
    lineage = {"/".join(n["assetKey"]["path"]): sorted("/".join(d["path"]) for d in n["dependencyKeys"]) for n in nodes}
    assert lineage == {  # the shipped sample source, a component, under its name
        "sample/watchlist": [],
        "sample/retry_queue": [],
        "sample/job_set": ["sample/retry_queue", "sample/watchlist"],
        "sample/synced_resources": ["sample/job_set"],
        "sample/dead_letter": ["sample/synced_resources"],
    }


MATERIALIZATIONS = """
query ($path: [String!]!) {
  assetOrError(assetKey: {path: $path}) {
    ... on Asset {
      assetMaterializations(limit: 10) {
        partition
        metadataEntries { label ... on IntMetadataEntry { intValue } }
      }
    }
  }
}
"""


def test_make_ui_opens_the_demos_days(tmp_path):
    """After the demo, the UI (as make ui starts it, from the demo's ui.env) shows both days."""
    demo = tmp_path / "demo"
    subprocess.run(
        [sys.executable, "-m", "pipelines.demo", "--resources", "600", "--dir", str(demo)],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=300,
    )
    env = dict(line.split("=", 1) for line in (demo / "ui.env").read_text().splitlines())
    dev = DagsterDev(Path(env["DAGSTER_HOME"]), env, tmp_path / "dev.log")
    try:
        dev.wait_for_assets()
        synced = dev.graphql(MATERIALIZATIONS, {"path": ["synced_resources"]})["data"]["assetOrError"]
        dead = dev.graphql(MATERIALIZATIONS, {"path": ["dead_letter"]})["data"]["assetOrError"]
    finally:
        dev.stop()
    by_day = {
        m["partition"]: {e["label"]: e.get("intValue") for e in m["metadataEntries"]}
        for m in synced["assetMaterializations"]
    }
    assert set(by_day) == {"2026-01-01", "2026-01-02"}  # both days, with the figures the UI plots
    assert by_day["2026-01-01"]["calls_made"] == 1200 and by_day["2026-01-02"]["calls_made"] < 1200
    assert {m["partition"] for m in dead["assetMaterializations"]} == {"2026-01-01", "2026-01-02"}
