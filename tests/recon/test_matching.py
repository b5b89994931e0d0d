"""Import and matching on a real journal: every class is found, a malformed file and
a file imported twice change nothing, a run is repeatable, and SQLite and PostgreSQL
give the same day."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio
from forecourt.switch.business_day import day_bounds
from forecourt.switch.config import SwitchConfig
from forecourt.switch.journal import Journal, JournalError, open_journal
from forecourt.switch.recon import ImportFile, ImportResult, MatchDay, RunResult
from forecourt.switch.recon.parse import file_sha256
from forecourt.switch.recon.reads import items, report_rows

from tests.recon import scenario

_TABLES = ("recon_files", "recon_lines", "recon_switch", "recon_results", "recon_items")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def cfg(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SwitchConfig]:
    dsn = request.getfixturevalue("postgres_db") if request.param == "postgres" else None
    yield scenario.config(tmp_path, dsn)


async def _import(journal: Journal, cfg: SwitchConfig, party: str, path: Path) -> ImportResult:
    p = cfg.recon.party(party)
    assert p is not None
    [result] = await journal.write(ImportFile(p, path, file_sha256(path), 1.0))
    assert isinstance(result, ImportResult)
    return result


async def _match(journal: Journal, cfg: SwitchConfig, party: str) -> RunResult:
    p = cfg.recon.party(party)
    assert p is not None
    start, end = day_bounds(scenario.DAY, cfg.business_day.cutover)
    [result] = await journal.write(MatchDay(p, scenario.DAY.isoformat(), start, end, 2.0))
    assert isinstance(result, RunResult)
    return result


def _found(rows: list[tuple[str, str]]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for cls, ref in rows:
        out.setdefault(cls, set()).add(ref)
    return out


async def _day(cfg: SwitchConfig, party: str, path: Path) -> tuple[dict[str, set[str]], RunResult]:
    async with open_journal(cfg) as journal:
        await scenario.journal_day(journal)
        await _import(journal, cfg, party, path)
        result = await _match(journal, cfg, party)
        rows = await report_rows(journal, party, scenario.DAY.isoformat())
        open_items = await items(journal, party)
    found = _found([(r.match_class, r.reference) for r in rows])
    assert {(i.match_class, i.reference) for i in open_items} == {
        (c, r) for c, refs in found.items() for r in refs
    }
    assert all(i.masked_pan is None or "*" in i.masked_pan for i in open_items)
    return found, result


def test_every_class_is_found_in_a_csv_file(cfg: SwitchConfig, tmp_path: Path) -> None:
    found, result = trio.run(_day, cfg, "bank", scenario.csv_file(tmp_path / "s.csv"))
    expected = scenario.expected_classes()
    assert found == {c: refs for c, refs in expected.items() if c != "matched"}
    assert result.counts["matched"] == len(expected["matched"]) + 1  # a reversal line nets out
    # the same result on either backend: recorded, compared in the next test
    (tmp_path.parent / f"recon-{cfg.database is not None}.txt").write_text(repr(found))


def test_a_fixed_width_file_matches_the_same(cfg: SwitchConfig, tmp_path: Path) -> None:
    found, _ = trio.run(_day, cfg, "bankfix", scenario.fixed_file(tmp_path / "s.txt"))
    assert found == {c: refs for c, refs in scenario.expected_classes().items() if c != "matched"}


@pytest.mark.postgres
def test_sqlite_and_postgres_reconcile_the_day_alike(tmp_path: Path, postgres_db: str) -> None:
    results = []
    for dsn in (None, postgres_db):
        where = tmp_path / ("pg" if dsn else "lite")
        where.mkdir()
        cfg = scenario.config(where, dsn)
        found, run = trio.run(_day, cfg, "bank", scenario.csv_file(where / "s.csv"))
        results.append((found, run.counts))
    assert results[0] == results[1]


def _snapshot(path: Path) -> dict[str, list[tuple[object, ...]]]:
    with sqlite3.connect(path) as db:
        return {t: sorted(db.execute(f"SELECT * FROM {t}").fetchall(), key=repr) for t in _TABLES}


def test_a_malformed_file_changes_nothing_and_names_the_line(tmp_path: Path) -> None:
    cfg = scenario.config(tmp_path)

    async def main() -> None:
        async with open_journal(cfg) as journal:
            await scenario.journal_day(journal)
            await _import(journal, cfg, "bank", scenario.csv_file(tmp_path / "good.csv"))
            await _match(journal, cfg, "bank")
        before = _snapshot(cfg.journal_path)
        async with open_journal(cfg) as journal:
            with pytest.raises(JournalError, match=r"line 3: amount '25\.00' is not a whole"):
                await _import(journal, cfg, "bank", scenario.malformed_file(tmp_path / "bad.csv"))
        assert _snapshot(cfg.journal_path) == before

    trio.run(main)


def test_the_same_file_twice_and_a_second_run_change_nothing(tmp_path: Path) -> None:
    cfg = scenario.config(tmp_path)
    path = scenario.csv_file(tmp_path / "s.csv")

    async def main() -> None:
        async with open_journal(cfg) as journal:
            await scenario.journal_day(journal)
            first = await _import(journal, cfg, "bank", path)
            run1 = await _match(journal, cfg, "bank")
        before = _snapshot(cfg.journal_path)
        async with open_journal(cfg) as journal:
            again = await _import(journal, cfg, "bank", path)
            run2 = await _match(journal, cfg, "bank")
            # the same lines in another file (a re-sent file with one line more): only
            # the new line is added
            copy = tmp_path / "resent.csv"
            copy.write_text(path.read_text() + "000000000096,1,978,2026-12-01 14:00:00,sale,\n")
            resent = await _import(journal, cfg, "bank", copy)
        assert first.new_lines == first.lines > 0 and not first.already
        assert again.already and again.new_lines == 0
        assert run2.counts == run1.counts and run2.new_items == 0 < run1.new_items
        assert (resent.lines, resent.new_lines) == (first.lines + 1, 1)
        after = _snapshot(cfg.journal_path)
        assert after["recon_items"] == before["recon_items"]
        assert after["recon_results"] == before["recon_results"]

    trio.run(main)
