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
