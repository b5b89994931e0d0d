"""SAF delivers one transaction's items in the order they were queued, across restarts.

What a stand-in approval after a timeout leaves in the journal (the reversal of the
timed-out request due, its advice due, the reversal of the advice parked) claimed on
both backends as a node would, with the node stopping between the steps: nothing is
claimed while an earlier item of the same transaction is due, in flight or flagged.
"""

from __future__ import annotations

import time

from forecourt.switch.journal import (
    ClaimSaf,
    CompleteSaf,
    FlagSaf,
    Journal,
    RetrySaf,
    open_journal,
)

from tests.switch import test_journal as journal_tests
from tests.switch.test_journal import KEY, Target, row

target = journal_tests.target  # both backends

FAR = 10 * 365 * 86400.0


async def _claim(journal: Journal, node: str = "n1") -> list[str]:
    items = await journal.saf_claim(node, limit=10, lease_s=60.0, now=time.time())
    return [item.mti for item in items]


async def _queue(journal: Journal, txn_id: str) -> list[int]:
    now = time.time()
    ids = await journal.write(
        journal.saf_enqueue_op(txn_id, "bank", "1420", b"reversal of the 1200", now=now),
        journal.saf_enqueue_op(txn_id, "bank", "1220", b"advice", now=now),
        journal.saf_enqueue_op(
            txn_id, "bank", "1420", b"reversal of the 1220", now=now, next_attempt_at=now + FAR
        ),
    )
    return [int(i) for i in ids if isinstance(i, int)]


async def test_order_kept_through_crashes(target: Target) -> None:
    r = row()
    async with open_journal(target, saf_key=KEY, node="n1") as journal:
        await journal.record_received(r)
        reversal, advice, parked = await _queue(journal, r.txn_id)
        assert await _claim(journal) == ["1420"]  # the advice waits
        assert await _claim(journal) == []  # the reversal in flight: still nothing
    # the node stopped with the reversal in flight: recovery makes it due again
    async with open_journal(target, saf_key=KEY, node="n1") as journal:
        await journal.write(RetrySaf(reversal, "in flight when the switch stopped", 0.0))
        assert await _claim(journal) == ["1420"]
        await journal.write(CompleteSaf(reversal))
    # stopped between the two: the advice is due at the next start, and goes alone
    async with open_journal(target, saf_key=KEY, node="n2") as journal:
        assert await _claim(journal, "n2") == ["1220"]
        await journal.write(CompleteSaf(advice))
        assert await _claim(journal, "n2") == []  # parked: blocks nothing, goes nowhere
        await journal.write(RetrySaf(parked, "reversed by the terminal", 0.0))
        assert await _claim(journal, "n2") == ["1420"]


async def test_a_flagged_item_holds_the_ones_after_it(target: Target) -> None:
    """The advice never goes after a reversal given up on: an operator decides."""
    r, other = row(1), row(2)
    async with open_journal(target, saf_key=KEY, node="n1") as journal:
        await journal.record_received(r)
        await journal.record_received(other)
        reversal, _, _ = await _queue(journal, r.txn_id)
        await journal.write(ClaimSaf("n1", 1, 60.0, time.time()), FlagSaf(reversal, "gave up"))
        await journal.saf_enqueue(other.txn_id, "bank", "1220", b"another advice")
        # another transaction's item is not held by this one's
        assert await _claim(journal) == ["1220"]
        entries = {e.id: e for e in await journal.saf_entries_of([r.txn_id])}
        assert [e.state for e in entries.values()] == ["flagged", "pending", "pending"]
