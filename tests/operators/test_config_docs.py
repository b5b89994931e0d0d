"""docs/configuration.md and conf/forecourt.toml are checked against the readers:
every key `parse_config` accepts is in the reference table with the default the
code uses, no row names a key the code does not read, and every default shown in
conf/forecourt.toml (lines not marked `pilot:` or `example:`) is the code's."""

from __future__ import annotations

import re
import tomllib
from typing import Any

import pytest

from tests.operators.config_keys import NO_DEFAULT, REPO, accepted_keys

DOC = REPO / "docs" / "configuration.md"
TABLE_HEADING = "## Every key and its default"


def _leaf_keys(monkeypatch: pytest.MonkeyPatch) -> dict[tuple[str, str], Any]:
    keys = accepted_keys(monkeypatch)
    tables = {t for t, _ in keys}
    return {(t, k): d for (t, k), d in keys.items() if f"{t}.{k}".strip(".") not in tables}


def _doc_rows() -> dict[tuple[str, str], str]:
    text = DOC.read_text(encoding="utf-8")
    section = text[text.index(TABLE_HEADING) :]
    rows = {}
    for m in re.finditer(r"^\| `([^`]+)` \| `([^`]+)` \| ([^|]+) \|", section, re.M):
        table = "" if m.group(1) == "(top level)" else m.group(1)
        rows[(table, m.group(2))] = m.group(3).strip()
    return rows


def _value(cell: str) -> Any:
    return tomllib.loads(f"v = {cell.strip('`')}")["v"]


def test_every_key_is_documented_with_the_codes_default(monkeypatch: pytest.MonkeyPatch) -> None:
    keys, rows = _leaf_keys(monkeypatch), _doc_rows()
    assert sorted(set(keys) - set(rows)) == [], "accepted but not documented"
    assert sorted(set(rows) - set(keys)) == [], "documented but not read by the code"
    wrong = {
        key: (rows[key], default)
        for key, default in keys.items()
        if default is not NO_DEFAULT and key != ("", "node") and _value(rows[key]) != default
    }
    assert wrong == {}


def test_the_page_has_a_keys_section_and_no_stale_claims() -> None:
    text = DOC.read_text(encoding="utf-8")
    assert re.search(r"^## `\[keys\]`", text, re.M)
    assert "not yet implemented" not in text


def test_shipped_config_shows_the_codes_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    keys = _leaf_keys(monkeypatch)
    table, seen_tables, wrong, checked = "", set(), [], 0
    first_of_its_table = True
    for line in (REPO / "conf" / "forecourt.toml").read_text(encoding="utf-8").splitlines():
        header = re.match(r"^\[\[?([a-z_.]+)\]\]?", line)
        if header:
            table = header.group(1)
            first_of_its_table = table not in seen_tables
            seen_tables.add(table)
            continue
        m = re.match(r"^([a-z_]+) = ([^#]+?)\s*(#.*)?$", line)
        comment = m.group(3) or "" if m else ""
        if not m or not first_of_its_table or "pilot:" in comment or "example:" in comment:
            continue
        default = keys.get((table, m.group(1)), NO_DEFAULT)
        if default is NO_DEFAULT:
            continue
        checked += 1
        if _value(m.group(2)) != default:
            wrong.append(f"{table}.{m.group(1)} = {m.group(2)} (code: {default!r})")
    assert wrong == []
    assert checked > 40
