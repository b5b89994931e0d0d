"""Reversal (1420/1421, 0400/0401) from a terminal: a timeout, a cancel, a pump fault.

The original is found through field 56 (1993) or 90 (1987) and the terminal id.
The reversal is queued for the original's authoriser in SAF, durably with the
answer, and the terminal hears 400/00 at once. An original that never left is
answered locally; an unknown one gets 914/25. A reversal carrying a split group
reverses the whole sale (flows/split.py).
"""

from __future__ import annotations

from forecourt.codecs.action_codes import Outcome
from forecourt.codecs.message import Message
from forecourt.codecs.mti import RequestKey, mti_class
from forecourt.switch.answers import local_answer
from forecourt.switch.flows.base import Flow, FlowRules, Job
from forecourt.switch.flows.saf_queue import queue_for_authoriser
from forecourt.switch.flows.split import group_of, release_reversed_leg, reverse_sale
from forecourt.switch.flows.stand_in import STAND_IN, partial_reversal_ops, reverse_stand_in
from forecourt.switch.journal import CancelParked
from forecourt.switch.reversal import original_reference


async def reverse(job: Job) -> Message:
    request, record, services = job.request, job.txn, job.services
    family = job.ctx.dialect.family
    journal = services.journal
    record.state = "answered_locally"
    ref = original_reference(request, family)
    if ref is None:
        return local_answer(request, family, Outcome.FORMAT_ERROR)
    key = RequestKey(mti_class(ref[0]), record.terminal_id, ref[1])
    original = await journal.find_by_terminal_key(*key)
    if original is None:
        job.log.warning("reversal_original_not_found")
        return local_answer(request, family, Outcome.ORIGINAL_NOT_FOUND)
    record.original_txn_id = original.txn_id
    record.route = original.route
    partial = "30" in request.fields and request.fields.get("4") is not None
    record.flags = ("partial",) if partial else ()
    stand_in_link = services.authorisers.get(original.route or "")
    if original.state == "approved" and STAND_IN in original.flags and stand_in_link:
        # the stand-in approval's own reversal goes, after its advice (flows/stand_in.py),
        # even when the purchase never left the switch: its advice tells the host of it
        if partial:
            record.pending_ops += await partial_reversal_ops(journal, job, stand_in_link, original)
            job.log.info("stand_in_partial_reversal_queued", original=original.txn_id)
            return local_answer(request, family, Outcome.REVERSAL_ACCEPTED)
        due = await reverse_stand_in(journal, original.txn_id, "reversed by the terminal")
        if due:
            pending = journal.update_ops(original.txn_id, state="reversal_pending")
            record.pending_ops += [*due, *pending]
            job.log.info("stand_in_reversal_queued", original=original.txn_id)
            return local_answer(request, family, Outcome.REVERSAL_ACCEPTED)
    if original.forwarded_at is None or original.route is None:
        job.log.info("reversal_answered_locally_original_never_left", original=original.txn_id)
        return local_answer(request, family, Outcome.REVERSAL_ACCEPTED)
    if original.state in ("reversal_pending", "reversed") and not partial:
        job.log.info("reversal_already_under_way", original=original.txn_id)
        return local_answer(request, family, Outcome.REVERSAL_ACCEPTED)
    authoriser = services.authorisers.get(original.route)
    if authoriser is None:
        return local_answer(request, family, Outcome.ISSUER_UNAVAILABLE)
    record.state = "reversal_pending"
    queue_for_authoriser(journal, request, family, record, authoriser, original)
    if original.state == "approved":
        # the terminal's reversal goes instead of the one the switch parked for it
        record.pending_ops.append(CancelParked(original.txn_id, "reversed by the terminal"))
    if not partial:
        record.pending_ops += journal.update_ops(original.txn_id, state="reversal_pending")
    job.log.info("reversal_queued", original=original.txn_id, partial=partial)
    return local_answer(request, family, Outcome.REVERSAL_ACCEPTED)


async def reverse_leg_or_sale(job: Job) -> Message:
    """A reversal carrying a split group reverses the whole sale; any other reverses
    its original (and frees what that original held of a split sale)."""
    group = group_of(job)
    if isinstance(group, Message):
        return group
    if group is not None:
        return await reverse_sale(job, group)
    answer = await reverse(job)
    await release_reversed_leg(job)
    return answer


# accepted after a sign-off too: a reversal only ever gives money back
FLOW = Flow(FlowRules("reversal", needs_signed_on=False), reverse_leg_or_sale)
