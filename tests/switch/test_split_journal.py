"""The split group's claim is durable in the journal: two nodes racing for the last of
a sale never both take it. Both backends (`target`), and PostgreSQL's row lock under
two real connections; the migration adds the group columns and table.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import trio
from forecourt.switch.journal import (
    MIGRATIONS,
    ClaimSplitLeg,
    ReverseSplitGroup,
    SettleSplitLeg,
    open_journal,
)

from tests.switch import test_journal as journal_tests
from tests.switch.test_journal import Target, row

target = journal_tests.target  # both backends

T1, G = "T0000001", "000000042"


def claim(amount: int, rank: int = 0, total: int = 10000, group: str = G) -> ClaimSplitLeg:
    return ClaimSplitLeg(T1, group, total, amount, rank, time.time())


async def test_claims_stop_at_the_total_and_follow_the_rules(target: Target) -> None:
    async with open_journal(target) as journal:
        assert await journal.write(claim(6000)) == [(6000, 0)]
        assert await journal.write(claim(5000)) == [None]  # would pass the total
        assert await journal.write(claim(1000, total=9000)) == [None]  # another total
        assert await journal.write(claim(4000, rank=2)) == [(10000, 0)]
        await journal.write(SettleSplitLeg(T1, G, 0, 4000, rank=2))
        await journal.write(SettleSplitLeg(T1, G, -6000, 0))  # the first leg declined
        assert await journal.write(claim(1000, rank=1)) == [None]  # below the bank leg
        assert await journal.write(claim(6000, rank=2)) == [(10000, 4000)]
        await journal.write(ReverseSplitGroup(T1, G))
        assert await journal.write(claim(1, rank=2)) == [None]  # a reversed sale
        state = await journal.split_group(T1, G)
    assert state is not None
    assert (state.claimed, state.approved, state.tender_rank, state.reversed) == (0, 0, 2, True)


async def test_two_journals_racing_take_exactly_the_total(target: Target) -> None:
    """Forty claims of 1000 against a total of 10000 from two journal instances (two
    nodes): exactly ten are taken, whatever the interleaving."""
    results: list[object] = []
    async with open_journal(target, node="a") as a, open_journal(target, node="b") as b:

        async def one(n: int) -> None:
            (got,) = await (a if n % 2 else b).write(claim(1000))
            results.append(got)

        async with trio.open_nursery() as nursery:
            for n in range(40):
                nursery.start_soon(one, n)
        state = await a.split_group(T1, G)
    taken = [r for r in results if r is not None]
    assert len(taken) == 10 and state is not None and state.claimed == 10000
    assert sorted(c for c, _ in taken) == list(range(1000, 10001, 1000))  # type: ignore[misc]


@pytest.mark.postgres
@pytest.mark.parametrize("existing", [False, True], ids=["new-group", "existing-group"])
def test_postgres_the_second_node_waits_for_the_first_and_is_refused(
    postgres_db: str, existing: bool
) -> None:
    """Node B claims while node A's claim is uncommitted: B waits on the group's row,
    then sees A's claim and takes nothing (for a group both create at once too)."""
    import psycopg
    from forecourt.switch.journal.postgres import PG, PostgresJournal

    PostgresJournal(postgres_db).close()  # migrated
    params = [T1, G, 10000, 6000, time.time(), 0]
    with psycopg.connect(postgres_db) as first, psycopg.connect(postgres_db) as second:
        if existing:
            first.execute(PG.claim_split_leg, [T1, G, 10000, 1000, time.time(), 0])
            first.execute(PG.settle_split_leg, (-1000, 0, -1, -1, -1, T1, G))
            first.commit()
        assert first.execute(PG.claim_split_leg, params).fetchone() == (6000, 0)
        got: list[object] = []
        racer = threading.Thread(
            target=lambda: got.append(second.execute(PG.claim_split_leg, params).fetchone())
        )
        racer.start()
        _wait_for_a_lock_wait(postgres_db)
        first.commit()
        racer.join()
        second.commit()
        claimed = second.execute(
            "SELECT claimed FROM split_groups WHERE terminal_id = %s AND group_id = %s", (T1, G)
        ).fetchone()
    assert got == [None] and claimed == (6000,)


def _wait_for_a_lock_wait(dsn: str) -> None:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as watcher:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            waiting = watcher.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
            ).fetchone()
            if waiting and waiting[0]:
                return
            time.sleep(0.01)
    raise AssertionError("the second claim never waited for the first")


def test_the_migration_adds_the_split_columns_and_table(tmp_path: Path) -> None:
    import sqlite3

    from forecourt.switch.journal import SqliteJournal

    SqliteJournal(tmp_path / "j.db").close()
    conn = sqlite3.connect(tmp_path / "j.db")
    columns = {r[1] for r in conn.execute("PRAGMA table_info(transactions)")}
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    version = conn.execute("SELECT max(version) FROM schema_version").fetchone()[0]
    conn.close()
    assert {"split_group", "tender"} <= columns and "split_groups" in tables
    assert version == MIGRATIONS[-1][0]
    assert any("CREATE TABLE split_groups" in sql for _, sql in MIGRATIONS)


async def test_a_leg_row_keeps_its_group_and_tender(target: Target) -> None:
    async with open_journal(target) as journal:
        leg = row(1, split_group=G, tender="fleet")
        await journal.record_received(leg)
        legs = await journal.split_legs(T1, G)
    assert [(r.split_group, r.tender) for r in legs] == [(G, "fleet")]


async def test_a_leg_taken_over_from_a_dead_node_frees_its_claim(target: Target) -> None:
    from forecourt.switch.takeover import take_over_once

    async with open_journal(target, node="alive") as journal:
        leg = row(7, node="dead", state="forwarded", split_group=G, tender="bank",
                  forwarded_at=time.time() - 60)  # fmt: skip
        await journal.write(claim(5000, rank=2))
        await journal.record_received(leg)
        other = row(8, node="dead", state="forwarded", forwarded_at=time.time() - 60)
        await journal.record_received(other)  # not a leg: nothing to free
        taken = await take_over_once(journal, "alive", threshold_s=10.0)
        state = await journal.split_group(T1, G)
    assert sorted(t for t, _ in taken) == sorted([leg.txn_id, other.txn_id])
    assert state is not None and (state.claimed, state.approved) == (0, 0)
