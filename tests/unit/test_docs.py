"""Unit tests: the README stays a front door, and the docs' links lead somewhere.

Every relative link in README.md and docs/ (and localcloud/README.md) names a file that exists,
and a link to a heading (``page.md#heading``) names a heading that page has, as GitHub forms its
anchors. Each test named in docs/guarantees.md is defined in the file linked on its row.
"""

from __future__ import annotations

import re
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]
README = PROJECT / "README.md"
README_MOST_LINES = 250
PAGES = [README, PROJECT / "localcloud" / "README.md", *sorted((PROJECT / "docs").rglob("*.md"))]
GUARANTEES = PROJECT / "docs" / "guarantees.md"

FENCED_BLOCK = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)
CODE_SPAN = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)
TEST_NAME = re.compile(r"`(test_\w+)`")


def prose(markdown: str) -> str:
    """The text outside code blocks and code spans, where a link is a link."""
    return CODE_SPAN.sub("", FENCED_BLOCK.sub("", markdown))


def anchor(heading: str) -> str:
    """GitHub's anchor for a heading: lowercase, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"[`*]|\[([^\]]*)\]\([^)]*\)", r"\1", heading).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    return {anchor(heading) for heading in HEADING.findall(FENCED_BLOCK.sub("", page.read_text()))}


def broken_links(page: Path) -> list[str]:
    """The page's relative links whose file, or heading in that file, does not exist."""
    broken = []
    for target in LINK.findall(prose(page.read_text())):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto: ...
            continue
        path_part, _, fragment = target.partition("#")
        linked = (page.parent / path_part).resolve() if path_part else page
        if not linked.exists() or (
            fragment and linked.suffix == ".md" and fragment not in anchors(linked)
        ):
            broken.append(target)
    return broken


def named_tests_missing(page: Path) -> list[str]:
    """Each table row's `test_...` names that no test file linked on the same row defines."""
    missing = []
    for row in table_rows(page):
        files = [(page.parent / target).resolve() for target in LINK.findall(row)]
        sources = "".join(f.read_text() for f in files if f.suffix == ".py" and f.exists())
        for name in TEST_NAME.findall(row):
            if not re.search(rf"^def {name}\(", sources, re.MULTILINE):
                missing.append(name)
    return missing


def table_rows(page: Path) -> list[str]:
    return [line for line in page.read_text().splitlines() if line.startswith("| ")]


def test_the_readme_is_short() -> None:
    lines = README.read_text().splitlines()
    assert len(lines) <= README_MOST_LINES, f"README.md has {len(lines)} lines"


def test_every_relative_link_in_the_docs_resolves() -> None:
    assert {page.relative_to(PROJECT).as_posix(): broken_links(page) for page in PAGES} == {
        page.relative_to(PROJECT).as_posix(): [] for page in PAGES
    }


def test_the_check_notices_a_missing_file_and_a_missing_heading(tmp_path: Path) -> None:
    # GIVEN a page with a good link, a link to a missing file and one to a missing heading
    (tmp_path / "other.md").write_text("# The Other Page: *really*\n\n## Part `two`\n")
    page = tmp_path / "page.md"
    page.write_text(
        "# Here\n\n[ok](other.md#the-other-page-really) [ok](other.md#part-two) [ok](#here)\n"
        "[gone](missing.md#here) [no heading](other.md#part-three) [web](https://example.com)\n"
        "`[in code](missing.md)`\n\n```\n[in a block](missing.md)\n```\n"
    )
    # WHEN its links are checked THEN exactly the two broken ones are reported
    assert broken_links(page) == ["missing.md#here", "other.md#part-three"]


def test_every_test_named_as_proof_of_a_guarantee_exists() -> None:
    assert table_rows(GUARANTEES), "docs/guarantees.md lists no guarantee"
    assert named_tests_missing(GUARANTEES) == []


def test_the_check_notices_a_test_that_does_not_exist(tmp_path: Path) -> None:
    (tmp_path / "test_x.py").write_text("def test_there() -> None:\n    pass\n")
    page = tmp_path / "guarantees.md"
    page.write_text("| g | [x](test_x.py) `test_there`, `test_gone` |\n")
    assert named_tests_missing(page) == ["test_gone"]
