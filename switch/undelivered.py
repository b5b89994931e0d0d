"""An approval the terminal never heard (reason 4020): reverse it at the host.

The session could not deliver the answer (the terminal went): the approval is
reversed through SAF, its parked reversal released or its stand-in advice kept in
order, and a split leg's share of the sale freed, in one journal write.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

import structlog
from forecourt.switch.authoriser import Authoriser
from forecourt.switch.context import PipelineSettings, SafWaker
from forecourt.switch.flows.stand_in import is_stand_in, reverse_stand_in
from forecourt.switch.journal import CompleteSaf, Journal, RetrySaf, SettleSplitLeg, WriteOp
from forecourt.switch.reversal import ReversalReason, saf_payload, switch_reversal
from forecourt.switch.transaction import TxnRecord, minor_units

__all__ = ["reverse_undelivered"]

log = structlog.get_logger("forecourt.pipeline")


async def reverse_undelivered(
    record: TxnRecord,
    *,
    settings: PipelineSettings,
    authorisers: Mapping[str, Authoriser],
    journal: Journal,
    saf: SafWaker | None,
) -> None:
    """The terminal went before it heard an approval: reverse it (reason 4020)."""
    if not settings.reverse_on_disconnect or record.state != "approved":
        return
    if not record.reversible:
        return
    parked = record.parked_saf_id
    authoriser = authorisers.get(record.route or "")
    ops: list[WriteOp] = [*journal.update_ops(record.txn_id, state="reversal_pending")]
    if record.sent is not None and authoriser is not None:
        reversal = switch_reversal(
            record.sent,
            record.sent.fields["11"],
            authoriser.family,
            ReversalReason.UNDELIVERED,
        )
        ops.append(
            journal.saf_enqueue_op(
                record.txn_id, authoriser.name, reversal.mti, saf_payload(reversal)
            )
        )
        if parked is not None:
            ops.append(CompleteSaf(parked))
    elif parked is not None:
        ops.append(RetrySaf(parked, "terminal gone before the answer", time.time()))
    elif is_stand_in(record):
        # its own reversal, parked behind its advice: SAF sends the advice first
        due = await reverse_stand_in(journal, record.txn_id, "terminal gone")
        if not due:
            return
        ops += due
    else:
        return
    if record.split_group is not None:  # a split leg: its part of the sale is free again
        held = minor_units(record.approved_amount) or 0
        ops.append(SettleSplitLeg(record.terminal_id, record.split_group, -held, -held))
    await journal.write(*ops)
    log.warning("answer_undelivered_reversal_queued", txn_id=record.txn_id)
    if saf is not None:
        saf.wake()
