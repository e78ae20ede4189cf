"""The README and docs/ stay navigable: every relative link resolves, and the README's first screen
shows the two setup commands.

A link is ``[text](target)`` or ``![alt](target)`` outside code blocks and inline code. For a
relative target, the part before ``#`` must name an existing file or folder (relative to the
Markdown file that links it); an anchor into a Markdown file must match one of that file's
headings (GitHub's slug rule). Links to http(s)/mailto are not checked (no network here).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
LINK = re.compile(r"!?\[[^\]]*\]\(\s*([^)\s]+)(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$")


def markdown_files() -> list[Path]:
    return [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def prose_lines(text: str) -> list[str]:
    """The lines outside fenced code blocks, with inline code removed."""
    lines, fenced = [], False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        if not fenced:
            lines.append(re.sub(r"`[^`]*`", "", line))
    return lines


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces -> hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link keeps its text
    text = text.lower().replace("`", "")
    text = "".join(ch for ch in text if ch.isalnum() or ch in " -_")
    return text.replace(" ", "-")


def anchors(md: Path) -> set[str]:
    found: set[str] = set()
    fenced = False
    for line in md.read_text(encoding="utf-8").splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        m = None if fenced else HEADING.match(line)
        if m:
            base = slug(m.group(1))
            name, n = base, 1
            while name in found:  # repeated headings get -1, -2, ...
                name, n = f"{base}-{n}", n + 1
            found.add(name)
    return found


def links(md: Path) -> list[str]:
    return [m.group(1) for line in prose_lines(md.read_text(encoding="utf-8"))
            for m in LINK.finditer(line)]


def broken_links(md: Path) -> list[str]:
    bad = []
    for target in links(md):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        path_part, _, anchor = target.partition("#")
        dest = (md.parent / path_part).resolve() if path_part else md
        if not dest.exists():
            bad.append(f"{target}: no file {dest.relative_to(REPO) if REPO in dest.parents else dest}")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            bad.append(f"{target}: no heading #{anchor} in {dest.name}")
    return bad


def test_docs_folder_has_a_contents_page_linked_from_the_readme():
    assert (REPO / "docs" / "README.md").is_file()
    assert "docs/README.md" in links(REPO / "README.md")
    # every page in docs/ is reachable from the contents page
    listed = {Path(t.partition("#")[0]).name for t in links(REPO / "docs" / "README.md")}
    pages = {p.name for p in (REPO / "docs").glob("*.md")} - {"README.md"}
    assert pages and pages <= listed, f"not on docs/README.md: {sorted(pages - listed)}"


@pytest.mark.parametrize("md", markdown_files(), ids=lambda p: str(p.relative_to(REPO)))
def test_every_relative_link_resolves(md):
    assert broken_links(md) == []
    if md.parent.name == "docs" and md.name != "README.md":
        assert "README.md" in links(md), f"{md.name} does not link back to the contents page"


def test_readme_first_screen_has_the_two_setup_commands():
    first = "\n".join((REPO / "README.md").read_text(encoding="utf-8").splitlines()[:60])
    assert "make demo" in first
    assert "make test" in first


def test_link_checker_catches_a_missing_file_and_a_missing_anchor(tmp_path, monkeypatch):
    # the checker itself can fail: a broken file link and a broken anchor are both reported
    (tmp_path / "other.md").write_text("# Real heading: `x` (1)\n")
    page = tmp_path / "page.md"
    page.write_text("[ok](other.md#real-heading-x-1) [gone](missing.md) [bad](other.md#nope)\n"
                    "```\n[in code](ignored.md)\n```\n`[inline](ignored.md)`\n")
    monkeypatch.setattr(sys.modules[__name__], "REPO", tmp_path)
    assert broken_links(page) == ["missing.md: no file missing.md",
                                  "other.md#nope: no heading #nope in other.md"]
