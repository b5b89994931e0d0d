"""Split tender in the flows: a purchase that is one leg of a sale, and the reversal
of the whole sale.

A leg (a 1200 / 0200 carrying a split group) is checked against its group, claims
its amount in the journal, goes to its card's authoriser like any purchase, and
its answer states in field 54 (amount type 04) what the sale still owes. A 1420 /
0400 carrying the split group reverses every approved leg of the sale, each at
the authoriser that approved it: the reversal the switch parked for each leg is
made due, in the same durable write as the terminal's answer, and SAF delivers it.
"""

from __future__ import annotations

import time

from forecourt.codecs.action_codes import Outcome
from forecourt.codecs.errors import DecodeError
from forecourt.codecs.message import Message
from forecourt.codecs.split import SplitGroup, split_group_of
from forecourt.switch.answers import local_answer
from forecourt.switch.flows.base import Job
from forecourt.switch.flows.forwarding import forward
from forecourt.switch.flows.stand_in import stand_in
from forecourt.switch.journal import (
    ClaimSplitLeg,
    DueParked,
    ReverseSplitGroup,
    SettleSplitLeg,
    SplitGroupState,
    WriteOp,
)
from forecourt.switch.split_tender import (
    OVER_PAY,
    LegRefusal,
    refusal,
    tender_rank,
    with_amount_due,
)
from forecourt.switch.transaction import minor_units, pan_of


def group_of(job: Job) -> SplitGroup | Message | None:
    """The request's split group, None, or the format-error answer to a malformed one."""
    try:
        return split_group_of(job.request, job.ctx.dialect.family)
    except DecodeError as exc:
        job.txn.state = "declined"
        job.services.metrics.malformed.labels(side="terminal", reason="split_group").inc()
        job.log.warning("split_group_malformed", field=exc.field, reason=exc.reason)
        return local_answer(job.request, job.ctx.dialect.family, Outcome.FORMAT_ERROR)


async def pay(job: Job) -> Message:
    """A purchase: one leg of a split sale when it carries a group, else forwarded."""
    group = group_of(job)
    if isinstance(group, Message):
        return group
    if group is None or not _goods_and_services(job.request):
        # a refund is no leg: it never counts toward a sale
        return await forward(job, instead=stand_in)
    return await _leg(job, group)


def _goods_and_services(request: Message) -> bool:
    return (request.fields.get("3") or "00")[:2] == "00"


async def _leg(job: Job, group: SplitGroup) -> Message:
    request, record = job.request, job.txn
    family = job.ctx.dialect.family
    record.split_group = group.group_id
    record.tender = job.services.router.tender(pan_of(request) or "")
    rank = tender_rank(record.tender)
    amount = minor_units(record.amount)
    if not amount:
        record.state = "declined"
        return local_answer(request, family, Outcome.FORMAT_ERROR)
    claim = await _claim(job, group, amount, rank)
    if not isinstance(claim, int):
        refused, state = claim
        record.state = "declined"
        record.flags = (refused.flag,)
        job.log.warning("split_leg_refused", reason=refused.flag, tender=record.tender)
        due = state.due if state is not None and not state.reversed else group.total
        answer = local_answer(request, family, refused.outcome)
        return with_amount_due(answer, due, request.fields.get("49"))
    approved_before = claim
    terminal, group_id = record.terminal_id, group.group_id
    answer = await forward(job, instead=stand_in)
    approved = (minor_units(record.approved_amount) or 0) if record.state == "approved" else 0
    record.pending_ops.append(
        SettleSplitLeg(terminal, group_id, approved - amount, approved, rank if approved else None)
    )
    due = group.total - approved_before - approved
    job.log.info("split_leg", tender=record.tender, approved=approved, due=due)
    return with_amount_due(answer, due, request.fields.get("49"))


async def _claim(
    job: Job, group: SplitGroup, amount: int, rank: int
) -> int | tuple[LegRefusal, SplitGroupState | None]:
    """The leg's claim on its sale, durable before it leaves: what the sale's legs had
    approved before it, or why it is refused (and the group as read)."""
    journal, terminal = job.services.journal, job.txn.terminal_id
    state = await journal.split_group(terminal, group.group_id)
    refused = refusal(group, state, amount, rank)
    if refused is not None:
        return refused, state
    (claimed,) = await journal.write(
        ClaimSplitLeg(terminal, group.group_id, group.total, amount, rank, time.time())
    )
    if isinstance(claimed, tuple):
        return int(claimed[1])
    # another leg (at another node, perhaps) took it between the read and the claim
    state = await journal.split_group(terminal, group.group_id)
    return refusal(group, state, amount, rank) or OVER_PAY, state


async def reverse_sale(job: Job, group: SplitGroup) -> Message:
    """Every approved leg of the sale reversed at its own authoriser, or none."""
    request, record, journal = job.request, job.txn, job.services.journal
    family = job.ctx.dialect.family
    record.state = "answered_locally"
    record.split_group = group.group_id
    legs = await journal.split_legs(record.terminal_id, group.group_id)
    if not legs:
        job.log.warning("split_sale_not_found")
        return local_answer(request, family, Outcome.ORIGINAL_NOT_FOUND)
    record.original_txn_id = legs[-1].txn_id
    state = await journal.split_group(record.terminal_id, group.group_id)
    if state is not None and state.reversed:
        job.log.info("split_sale_already_reversed")
        return local_answer(request, family, Outcome.REVERSAL_ACCEPTED)
    approved = [leg for leg in legs if leg.state == "approved"]
    parked = {
        e.txn_id
        for e in await journal.saf_entries_of([leg.txn_id for leg in approved])
        if e.state == "pending" and e.mti[1:2] == "4"
    }
    gone = [leg.txn_id for leg in approved if leg.txn_id not in parked]
    if gone:
        # the shift closed or the hold window passed: reversing only some legs would
        # leave the sale half paid, so none is
        job.log.warning("split_sale_not_reversible", legs=gone)
        record.flags = ("split_not_reversible",)
        return local_answer(request, family, Outcome.INVALID_TRANSACTION)
    now = time.time()
    ops: list[WriteOp] = []
    for leg in approved:
        ops.append(DueParked(leg.txn_id, "split sale reversed by the terminal", now))
        ops += journal.update_ops(leg.txn_id, state="reversal_pending")
    ops.append(ReverseSplitGroup(record.terminal_id, group.group_id))
    record.pending_ops += ops
    record.flags = ("split_sale_reversed",)
    job.log.info("split_sale_reversal_queued", legs=len(approved), group_state=_shown(state))
    return local_answer(request, family, Outcome.REVERSAL_ACCEPTED)


async def release_reversed_leg(job: Job) -> None:
    """A terminal reversed one approved leg (a 1420 naming it, no group): what it held
    of its sale is free again, so the sale can be paid another way."""
    record = job.txn
    if record.state != "reversal_pending" or "partial" in record.flags:
        return
    if record.original_txn_id is None:
        return
    original = await job.services.journal.get(record.original_txn_id)
    if original is None or original.split_group is None or original.state != "approved":
        return
    held = original.approved_amount or 0
    record.pending_ops.append(
        SettleSplitLeg(original.terminal_id, original.split_group, -held, -held)
    )


def _shown(state: SplitGroupState | None) -> str:
    return "none" if state is None else f"{state.approved}/{state.total}"
