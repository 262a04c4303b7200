"""``dagster dev`` serves the code location: its webserver answers GraphQL with our assets."""

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
    assert lineage == {
        "watchlist": [],
        "retry_queue": [],
        "job_set": ["retry_queue", "watchlist"],
        "synced_resources": ["job_set"],
        "dead_letter": ["synced_resources"],
    }
