"""No document points at a file that is not in the repository: the links and the file
paths named in README.md and docs/*.md exist (a DESIGN.md and a test file that were
never there were named by several pages)."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")
PATH = re.compile(
    r"(?<![\w/.-])((?:tests|docs|conf|bench|switch|keys|codecs|simulators|scripts|console)"
    r"/[\w./-]*\w\.(?:py|md|toml|cfg|sh|txt))\b"
)
TOP_LEVEL = re.compile(r"(?<![\w/.-])([A-Z][A-Z_]+\.md)\b")


def _missing(page: Path) -> list[str]:
    text = page.read_text(encoding="utf-8")
    missing = []
    for target in LINK.findall(text):
        if re.match(r"^[a-z]+:", target) or target.startswith("#"):
            continue
        if not (page.parent / target.split("#", 1)[0]).exists():
            missing.append(target)
    for target in PATH.findall(text) + TOP_LEVEL.findall(text):
        if "*" in target or "..." in target:
            continue
        if not (REPO / target).exists():
            missing.append(target)
    return missing


def test_links_and_file_references_exist() -> None:
    found = {page.name: _missing(page) for page in PAGES}
    assert {name: m for name, m in found.items() if m} == {}


def test_no_page_links_outside_the_repository() -> None:
    for page in PAGES:
        for target in LINK.findall(page.read_text(encoding="utf-8")):
            assert not target.startswith(("http://", "https://")), (page.name, target)
