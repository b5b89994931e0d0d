"""What every node must see alike, kept in the journal: open shifts, terminal guards,
and the acquirer a transaction went to. Both backends (`target`), as in test_journal.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest
from forecourt.switch.journal import (
    MIGRATIONS,
    ClearMacFailures,
    CloseShift,
    GuardState,
    InsertTransaction,
    OpenShift,
    RecordMacFailure,
    SetSignedOn,
    SqliteJournal,
    UnlockTerminal,
    open_journal,
)

from tests.switch import test_journal as journal_tests
from tests.switch.test_journal import Target, row

target = journal_tests.target  # both backends, as in test_journal

T1, T2 = "T0000001", "T0000002"


# ----------------------------------------------------------------------- open shifts


async def test_an_insert_without_shift_takes_the_terminals_open_shift(target: Target) -> None:
    async with open_journal(target) as journal:
        before = row(1)
        await journal.record_received(before)
        assert await journal.shift_open(T1, "S1", at=10.0) is True
        assert await journal.open_shift(T1) == "S1"
        inside, own, other = row(2), row(3, shift_id="S9"), row(4, terminal_id=T2)
        for r in (inside, own, other):
            await journal.record_received(r)
        await journal.shift_close(T1, "S1", {}, True, at=20.0)
        assert await journal.open_shift(T1) is None
        after = row(5)
        await journal.record_received(after)
        got = {r.txn_id: (await journal.get(r.txn_id)) for r in (before, inside, own, other, after)}
    shifts = {txn_id: r.shift_id if r else "missing" for txn_id, r in got.items()}
    assert shifts[inside.txn_id] == "S1"  # opened here or at any other node
    assert shifts[own.txn_id] == "S9"  # a shift id the caller gives is kept
    assert shifts[other.txn_id] is None  # another terminal's shift is not taken
    assert shifts[before.txn_id] is None and shifts[after.txn_id] is None


async def test_open_shift_twice_keeps_the_first(target: Target) -> None:
    async with open_journal(target) as journal:
        assert await journal.shift_open(T1, "S1", at=10.0) is True
        assert await journal.shift_open(T1, "S2", at=11.0) is False
        assert await journal.write(OpenShift(T1, "S1", 12.0)) == [False]  # already open
        assert await journal.open_shift(T1) == "S1"
        assert await journal.open_shifts() == [(T1, "S1")]
        await journal.write(CloseShift(T1, "S1", 20.0, {}, True))
        assert await journal.shift_open(T1, "S2", at=21.0) is True
        assert await journal.open_shift(T1) == "S2"


def test_the_grouped_path_takes_the_open_shift_too(tmp_path: Path) -> None:
    backend = SqliteJournal(tmp_path / "j.db", "normal")
    try:
        assert backend.run_batch([[OpenShift(T1, "S1", 10.0)]]) == [[True]]
        r = row(1)
        assert backend._run_grouped([[InsertTransaction(r)]]) == [[None]]
        reader = backend.open_reader()
        got = reader.get(r.txn_id)
        reader.close()
    finally:
        backend.close()
    assert got is not None and got.shift_id == "S1"


def test_the_open_shift_is_found_through_its_index(tmp_path: Path) -> None:
    """Every insert without a shift runs the sub-select: it must reach the terminal's
    open shift directly, not walk every shift the terminal ever had (the primary key)."""
    from forecourt.switch.journal import statements
    from forecourt.switch.journal.sqlite import SQLITE

    SqliteJournal(tmp_path / "j.db", "normal").close()
    with sqlite3.connect(tmp_path / "j.db") as db:
        plans = [
            [step[3] for step in db.execute(f"EXPLAIN QUERY PLAN {sql}", params)]
            for sql, params in (
                (statements.OPEN_SHIFT_OF, (T1,)),
                (SQLITE.insert_txn, [None] * SQLITE.insert_txn.count("?")),
            )
        ]
    for plan in plans:
        assert "SEARCH shifts USING INDEX shifts_open (terminal_id=?)" in plan, plan


def test_migration_4_leaves_one_open_shift_per_terminal(tmp_path: Path) -> None:
    """Before the journal owned open shifts, two nodes could each open one for a
    terminal: the older is closed when the newer opened, so the unique index holds."""
    path = tmp_path / "j.db"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at REAL)")
    for version, sql in MIGRATIONS[:3]:
        db.executescript(sql)
        db.execute("INSERT INTO schema_version VALUES (?, 0)", (version,))
    db.executemany(
        "INSERT INTO shifts (terminal_id, shift_id, opened_at) VALUES (?, ?, ?)",
        [(T1, "A", 1.0), (T1, "B", 5.0), (T1, "C", 3.0), (T2, "D", 2.0)],
    )
    db.commit()
    db.close()
    backend = SqliteJournal(path, "normal")
    try:
        reader = backend.open_reader()
        assert sorted(reader.open_shifts()) == [(T1, "B"), (T2, "D")]
        closed = {s: reader.shift(T1, s) for s in ("A", "C")}
        reader.close()
        assert backend.run_batch([[OpenShift(T1, "E", 9.0)]]) == [[False]]
    finally:
        backend.close()
    assert {s: r.closed_at if r else None for s, r in closed.items()} == {"A": 3.0, "C": 5.0}


@pytest.mark.postgres
def test_postgres_two_nodes_opening_a_shift_at_once_open_one(postgres_db: str) -> None:
    """Neither node sees the other's uncommitted shift; the unique index of open shifts
    makes the second wait for the first and then insert nothing."""
    import psycopg
    from forecourt.switch.journal.postgres import PG, PostgresJournal

    PostgresJournal(postgres_db).close()
    with psycopg.connect(postgres_db) as first, psycopg.connect(postgres_db) as second:
        first.execute(PG.open_shift, (T1, "S1", 10.0, T1))
        counts: list[int] = []
        racer = threading.Thread(
            target=lambda: counts.append(
                second.execute(PG.open_shift, (T1, "S2", 10.0, T1)).rowcount
            )
        )
        racer.start()
        _wait_for_a_lock_wait(postgres_db)
        first.commit()
        racer.join()
        second.commit()
        open_now = second.execute("SELECT shift_id FROM shifts WHERE closed_at IS NULL")
        assert [r[0] for r in open_now] == ["S1"]
    assert counts == [0]


def _wait_for_a_lock_wait(dsn: str) -> None:
    """Until some session waits for a lock (the racer is blocked behind the first)."""
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as watcher:
        for _ in range(20_000):
            got = watcher.execute("SELECT count(*) FROM pg_locks WHERE NOT granted").fetchone()
            if got and got[0]:
                return
    raise AssertionError("the second writer never waited for the first")


# ----------------------------------------------------------------------- terminal guards


async def test_the_terminal_guard_counts_locks_unlocks_and_survives_a_restart(
    target: Target,
) -> None:
    async with open_journal(target) as journal:
        assert await journal.guard(T1) is None
        states = [(await journal.write(RecordMacFailure(T1, 3, at)))[0] for at in (1.0, 2.0, 3.0)]
        assert states == [
            GuardState(T1, 1, False, False, 1.0),
            GuardState(T1, 2, False, False, 2.0),
            GuardState(T1, 3, True, False, 3.0),
        ]
        (cleared,) = await journal.write(ClearMacFailures(T1, 4.0))
        assert cleared == GuardState(T1, 0, True, False, 4.0)  # a good MAC keeps the lock
        (again,) = await journal.write(RecordMacFailure(T1, 3, 5.0))
        assert again == GuardState(T1, 1, True, False, 5.0)
        (unlocked,) = await journal.write(UnlockTerminal(T1, 6.0))
        assert unlocked == GuardState(T1, 0, False, False, 6.0)
        (off,) = await journal.write(SetSignedOn(T2, False, 7.0))
        assert off == GuardState(T2, 0, False, True, 7.0)
    async with open_journal(target) as journal:  # another node, or after a restart
        assert await journal.guard(T1) == unlocked
        assert await journal.guards_since(0) == [unlocked, off]
        assert await journal.guards_since(7.0) == [off]
        assert await journal.guards_since(7.5) == []
        (on,) = await journal.write(SetSignedOn(T2, True, 8.0))
        assert on == GuardState(T2, 0, False, False, 8.0)
        assert await journal.guard(T2) == on


@pytest.mark.postgres
def test_postgres_a_failure_counted_while_another_node_counts_is_not_lost(
    postgres_db: str,
) -> None:
    """The second node's increment waits for the first's row lock and adds to what the
    first committed; a read-then-write would have written 1 twice."""
    import psycopg
    from forecourt.switch.journal.postgres import PG, PostgresJournal

    PostgresJournal(postgres_db).close()
    with psycopg.connect(postgres_db) as first, psycopg.connect(postgres_db) as second:
        first.execute(PG.record_mac_failure, (T1, 3, 1.0, 3)).fetchone()
        first.commit()
        first.execute(PG.record_mac_failure, (T1, 3, 2.0, 3)).fetchone()
        seen: list[Any] = []
        racer = threading.Thread(
            target=lambda: seen.append(
                second.execute(PG.record_mac_failure, (T1, 3, 2.0, 3)).fetchone()
            )
        )
        racer.start()
        _wait_for_a_lock_wait(postgres_db)
        first.commit()
        racer.join()
        second.commit()
    assert [(r[1], bool(r[2])) for r in seen] == [(3, True)]


@pytest.mark.postgres
def test_postgres_two_nodes_counting_failures_at_once_lose_none(postgres_db: str) -> None:
    from forecourt.switch.journal.postgres import PostgresJournal

    nodes = [PostgresJournal(postgres_db, readers=1) for _ in range(2)]
    per_node = 40
    start = threading.Barrier(2)
    counted: list[list[object]] = [[], []]

    def count_failures(n: int) -> None:
        start.wait()
        for i in range(per_node):
            for outcome in nodes[n].run_batch([[RecordMacFailure(T1, 1000, float(i))]]):
                assert isinstance(outcome, list)
                counted[n] += outcome

    threads = [threading.Thread(target=count_failures, args=(n,)) for n in range(2)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        reader = nodes[0].open_reader()
        final = reader.guard(T1)
    finally:
        for node in nodes:
            node.close()
    seen = sorted(s.mac_failures for s in counted[0] + counted[1] if isinstance(s, GuardState))
    assert seen == list(range(1, 2 * per_node + 1))  # every increment saw its own count
    assert final is not None and final.mac_failures == 2 * per_node and not final.locked


# ----------------------------------------------------------------------- acquirer id


async def test_the_acquirer_id_round_trips(target: Target) -> None:
    async with open_journal(target) as journal:
        sent, unset = row(1, acquirer_id="40123456789"), row(2)
        await journal.record_received(sent)
        await journal.record_received(unset)
        first = await journal.get(sent.txn_id)
        await journal.update(unset.txn_id, acquirer_id="12345")
        second = await journal.get(unset.txn_id)
        listed = {r.txn_id: r.acquirer_id for r in await journal.list(limit=10)}
    assert first is not None and first.acquirer_id == "40123456789"
    assert second is not None and second.acquirer_id == "12345"
    assert listed == {sent.txn_id: "40123456789", unset.txn_id: "12345"}
