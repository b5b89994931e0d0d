"""What a switch does at start with what the last run left behind.

Every transaction still `forwarded` may have been approved at the host with no
answer journalled: its parked reversal becomes due now. One still `received` never
left the switch: it is marked failed. A split-tender leg reversed so frees its
part of the sale. SAF items this node had claimed are due
again at once. Recent outcomes are loaded into the in-memory duplicate window (answers, and
rows that ended without one, so a retransmission never becomes a second
authorisation) and the terminal guards (locks, sign-offs) are read. The reversals parked
for approved transactions need
nothing: they are in the journal, where a completion, a terminal's reversal or a
shift close cancels them.
"""

from __future__ import annotations

import time

import attrs
import structlog
from forecourt.codecs.mti import RequestKey
from forecourt.switch.journal import Journal, RetrySaf, WriteOp
from forecourt.switch.pipeline import Pipeline
from forecourt.switch.split_tender import release_in_flight

log = structlog.get_logger("forecourt.recovery")


@attrs.frozen
class RecoveryReport:
    reversed: int
    never_left: int
    warmed: int
    guarded: int = 0  # terminals with a standing (locked, failures, signed off)


async def recover(
    journal: Journal, pipeline: Pipeline, node: str, window: int = 50_000
) -> RecoveryReport:
    now = time.time()
    rows = await journal.recover(node)
    forwarded = [row.txn_id for row in rows if row.state == "forwarded"]
    parked: dict[str, int] = {}
    for entry in await journal.saf_entries_of(forwarded):
        if entry.state == "pending" and entry.mti[1:2] == "4":
            parked.setdefault(entry.txn_id, entry.id)
    ops: list[WriteOp] = []
    reversed_, never_left = 0, 0
    for row in rows:
        if row.state == "forwarded":
            ops += journal.update_ops(row.txn_id, state="reversal_pending")
            saf_id = parked.get(row.txn_id)
            if saf_id is not None:
                ops.append(RetrySaf(saf_id, "in flight when the switch stopped", now))
            reversed_ += 1
        else:
            ops += journal.update_ops(row.txn_id, state="failed")
            never_left += 1
    ops += release_in_flight(row for row in rows if row.state == "forwarded")
    # SAF items this node had claimed when it stopped are in no one's hands now: due at
    # once, not when their lease runs out (the host takes a repeat as a duplicate)
    for entry in await journal.saf_entries("in_flight", limit=10_000_000):
        if entry.claimed_by == node:
            ops.append(RetrySaf(entry.id, "in flight when the switch stopped", now))
    if ops:
        await journal.write(*ops)
    guarded = await pipeline.guard.load()
    warmed = 0
    latest = await journal.list(limit=window)
    if len(latest) >= window:
        # older rows are not warmed: the duplicate check asks the journal about them
        pipeline.requests.warmed_after(latest[-1].received_at)
    for row in reversed(latest):
        # answered rows, and rows this recovery (or an earlier one) ended without an
        # answer: a retransmission of either gets its outcome, never a second request
        if row.state not in ("forwarded", "received"):
            key = RequestKey(row.mti_class, row.terminal_id, row.stan)
            if pipeline.remember(key, row) is not None:
                warmed += 1
    if rows:
        log.warning("recovered_in_flight", reversals_queued=reversed_, never_left=never_left)
    return RecoveryReport(reversed_, never_left, warmed, guarded)
