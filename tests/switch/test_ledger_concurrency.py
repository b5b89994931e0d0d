"""Two switch nodes' journals on one PostgreSQL database debit one account at once:
the account never goes below zero, and what was approved is exactly what it lost.

Two `Journal` objects, each with its own writer connection, as two nodes have; each
batch of debits is one transaction holding the account's row lock until COMMIT.
"""

from __future__ import annotations

import random

import psycopg
import pytest
import trio
from forecourt.switch.journal import open_journal

from tests.switch.ledger_fixtures import FLEET_PAN, available, buy, open_fleet

pytestmark = pytest.mark.postgres

BALANCE = 100_000
DEBITS_PER_NODE = 300


async def test_two_nodes_never_overdraw_one_account(postgres_db: str) -> None:
    approved: list[int] = []
    async with open_journal(postgres_db, node="a", max_batch=8) as a:
        await open_fleet(a, "F1", BALANCE, FLEET_PAN)
        async with open_journal(postgres_db, node="b", max_batch=8) as b:
            rng = random.Random(17)

            async def debit(
                journal_name: str, n: int, amount: int, nursery_journal: object
            ) -> None:
                journal = a if journal_name == "a" else b
                decision = await buy(journal, FLEET_PAN, amount, f"{journal_name}|{n:06d}|x")
                approved.append(decision.approved)

            async with trio.open_nursery() as nursery:
                for n in range(DEBITS_PER_NODE):
                    for name in ("a", "b"):
                        nursery.start_soon(debit, name, n, rng.randint(100, 900), None)
            left = await available(a, "F1")
    assert left[0] >= 0
    assert sum(approved) == BALANCE - left[0] == left[2]
    assert sum(1 for x in approved if x == 0) > 0  # the account ran dry: the race was real
    with psycopg.connect(postgres_db) as conn:
        row = conn.execute(
            "SELECT coalesce(sum(CASE WHEN credit = 'available' THEN amount ELSE 0 END), 0)"
            " - coalesce(sum(CASE WHEN debit = 'available' THEN amount ELSE 0 END), 0)"
            " FROM ledger_postings WHERE account_id = 'F1'"
        ).fetchone()
        assert row is not None and int(row[0]) == left[0]
        (negative,) = conn.execute(
            "SELECT count(*) FROM ledger_accounts WHERE available < 0"
        ).fetchone()  # type: ignore[misc]
        assert negative == 0


async def test_two_nodes_reversing_the_same_originals_restore_each_once(
    postgres_db: str,
) -> None:
    """The terminal's reversal on one node, the switch's own on another, at once."""
    from forecourt.switch.ledger import LedgerComplete, LedgerReverse, SaleFacts

    from tests.switch.ledger_fixtures import ref

    async with open_journal(postgres_db, node="a", max_batch=4) as a:
        await open_fleet(a, "F1", BALANCE, FLEET_PAN)
        for n in range(100):
            await buy(a, FLEET_PAN, 300, f"p|{n:06d}|x")
            await buy(a, FLEET_PAN, 200, f"h|{n:06d}|x", kind="preauth", expires_at=1e12)
        assert await available(a, "F1") == (BALANCE - 50_000, 20_000, 30_000)
        async with open_journal(postgres_db, node="b", max_batch=4) as b:
            async with trio.open_nursery() as nursery:
                for n in range(100):
                    for journal in (a, b, a, b):
                        nursery.start_soon(journal.write, LedgerReverse(f"p|{n:06d}|x", 0.0))
                    for journal, completion in ((a, "c1"), (b, "c2")):
                        op = LedgerComplete(f"{completion}|{n:06d}|x", f"h|{n:06d}|x",
                                            ref(FLEET_PAN), 150, SaleFacts(), 0.0)  # fmt: skip
                        nursery.start_soon(journal.write, op)
            # every purchase back once; every hold captured 150 once, 50 released
            assert await available(b, "F1") == (BALANCE - 15_000, 0, 15_000)
