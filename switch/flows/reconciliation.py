"""Reconciliation (1520/1521, 0500): the terminal closes its shift with its totals.

Compared with the journal's totals for the terminal's open shift; the result is
journalled and answered 500 (in balance) / 501 (out) on 1993, field 66 = 1 / 2 on
1987. Answered by the switch: the host totals of the business day are a later step.
"""

from __future__ import annotations

import attrs
from forecourt.codecs.action_codes import Outcome
from forecourt.codecs.family import Family
from forecourt.codecs.message import Message
from forecourt.switch.answers import local_answer
from forecourt.switch.flows.base import Flow, FlowRules, Job
from forecourt.switch.journal import CancelShiftParked
from forecourt.switch.shifts import reconcile
from forecourt.switch.terminals.cashier_totals import cashier_totals


async def close_shift(job: Job) -> Message:
    request, record, services = job.request, job.txn, job.services
    family = job.ctx.dialect.family
    journal = services.journal
    record.state = "answered_locally"
    shift_id = await journal.open_shift(record.terminal_id)
    if shift_id is None:  # closed at another node since the pipeline's check
        job.log.warning("shift_close_without_open_shift")
        return local_answer(request, family, Outcome.DECLINED)
    totals = await journal.totals(record.terminal_id, shift_id)
    operators = await cashier_totals(journal, record.terminal_id, shift_id)
    result = attrs.evolve(reconcile(request, totals), operators=operators)
    await journal.shift_close(record.terminal_id, shift_id, result.as_journal(), result.in_balance)
    record.pending_ops.append(CancelShiftParked(record.terminal_id, shift_id))
    record.flags = ("in_balance",) if result.in_balance else ("out_of_balance",)
    job.log.info("shift_closed", shift_id=shift_id, in_balance=result.in_balance)
    answer = local_answer(request, family, Outcome.APPROVED)
    if family is Family.ISO1993:
        return answer.with_fields({39: "500" if result.in_balance else "501"})
    return answer.with_fields({66: "1" if result.in_balance else "2"})


FLOW = Flow(FlowRules("reconciliation", needs_signed_on=False, needs_shift=True), close_shift)
