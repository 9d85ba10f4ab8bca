"""Every relative link in the project's Markdown reaches a file that exists, and every ``#anchor`` a heading
of that file (GitHub's heading slugs), so a page split or a renamed section cannot leave a dead link."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: the project's own pages; generated folders and environments are not documentation
SKIP_DIRS = {".venv", ".git", "data", "runs", "node_modules", ".pytest_cache", "mss.egg-info"}
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
HTML_ANCHOR = re.compile(r"<a\s+(?:id|name)=\"([^\"]+)\"")
FENCE = re.compile(r"^\s*(```|~~~)")
INLINE_CODE = re.compile(r"`[^`]*`")


def markdown_files() -> list[Path]:
    return sorted(p for p in ROOT.rglob("*.md") if not SKIP_DIRS.intersection(p.relative_to(ROOT).parts))


def prose_lines(text: str) -> list[tuple[int, str]]:
    """(line number, line) outside fenced code blocks."""
    lines, fenced = [], False
    for number, line in enumerate(text.splitlines(), 1):
        if FENCE.match(line):
            fenced = not fenced
        elif not fenced:
            lines.append((number, line))
    return lines


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: markup dropped, lower case, punctuation removed, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link keeps its text
    text = text.replace("`", "").strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)  # \w keeps letters, digits and underscores, as GitHub does
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every anchor a page defines: its headings' slugs (a repeated one gets -1, -2, ...) and HTML ids."""
    seen: dict[str, int] = {}
    found = set()
    for _, line in prose_lines(path.read_text(encoding="utf-8")):
        found.update(HTML_ANCHOR.findall(line))
        match = HEADING.match(line)
        if match:
            base = slug(match.group(2))
            count = seen.get(base, 0)
            seen[base] = count + 1
            found.add(base if count == 0 else f"{base}-{count}")
    return found


def dead_links(path: Path) -> list[str]:
    """'FILE:LINE: target (why)' for each relative link of ``path`` that reaches nothing."""
    dead = []
    for number, line in prose_lines(path.read_text(encoding="utf-8")):
        for target in LINK.findall(INLINE_CODE.sub("", line)):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):  # http:, https:, mailto:
                continue
            file_part, _, anchor = target.partition("#")
            reached = (path.parent / file_part).resolve() if file_part else path
            where = f"{path.relative_to(ROOT)}:{number}: {target}"
            if not reached.exists():
                dead.append(f"{where} (no such file)")
            elif anchor and reached.suffix == ".md" and anchor not in anchors(reached):
                dead.append(f"{where} (no heading with that anchor in {reached.name})")
    return dead


def test_slugs_follow_githubs_rules():
    assert slug("224 more songs: the eleventh stage (the committed `demucs.pt`)") == (
        "224-more-songs-the-eleventh-stage-the-committed-demucspt"
    )
    assert slug("UNet against Demucs at equal budget") == "unet-against-demucs-at-equal-budget"
    assert (
        slug("The 4-stem checkpoints: how they were trained")
        == "the-4-stem-checkpoints-how-they-were-trained"
    )
    assert (
        slug('Generator v6 (busier parts, a lead in "other")') == "generator-v6-busier-parts-a-lead-in-other"
    )


def test_the_checker_finds_a_dead_file_and_a_dead_anchor(tmp_path, monkeypatch):
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    page = tmp_path / "page.md"
    page.write_text(
        "# Title\n\n## A section\n\n## A section\n\n[ok](#a-section) [ok](#a-section-1) [ok](page.md#title)\n"
        "[gone](missing.md) [bad](#no-such) [web](https://example.com) `[code](x.md)`\n"
        "```\n[in a fence](nothing.md)\n```\n",
        encoding="utf-8",
    )
    assert dead_links(page) == [
        "page.md:8: missing.md (no such file)",
        "page.md:8: #no-such (no heading with that anchor in page.md)",
    ]


@pytest.mark.parametrize("path", markdown_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_reaches_a_file_and_heading(path):
    assert dead_links(path) == []
