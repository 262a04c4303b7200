"""The README is a front door: short, and every other document is reachable from it."""

import re

from pipelines_tests.helpers import ROOT

LINK = re.compile(r"\]\(([^)#\s]+\.md)\)")


def test_the_readme_is_short_and_links_every_document():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 250
    linked = {(ROOT / target).resolve() for target in LINK.findall(readme)}
    docs = {p.resolve() for p in (ROOT / "docs").glob("*.md")}
    assert docs and docs <= linked, f"not linked from the README: {sorted(p.name for p in docs - linked)}"
    assert all(p.exists() for p in linked), [str(p) for p in linked if not p.exists()]


def test_links_between_documents_resolve():
    for doc in (ROOT / "docs").glob("*.md"):
        for target in LINK.findall(doc.read_text()):
            assert (doc.parent / target).resolve().exists(), f"{doc.name} links to a missing {target}"
