"""Notify transaction result (1624, function code 682): the card completed its debit.

The grey record is closed with the final amount (field 4) and the card's ledger
account debited by it, in one database transaction; a repeat answers the same 000
and debits nothing. A result whose lock notification has not arrived is recorded
and closed at once (an advice is never refused: the fuel is in the tank). 118,
129 and 904 as for the grey-lock notification.
"""

from __future__ import annotations

from forecourt.codecs.message import Message
from forecourt.switch.flows.base import Flow, Job
from forecourt.switch.flows.grey_lock import card_facts
from forecourt.switch.grey import GreyAnswer, GreyResult
from forecourt.switch.grey.answering import answer, ic_flow, ic_rules, tac_refused
from forecourt.switch.grey.messages import IcRequest, record_elements
from forecourt.switch.grey.service import IcCards

NAME = "grey_result"


async def _result(job: Job, ic: IcCards, request: IcRequest) -> Message:
    refused = tac_refused(job, ic, NAME, request)
    if refused is not None:
        return refused
    found = await ic.write(GreyResult(card_facts(ic, request)))
    assert isinstance(found, GreyAnswer)
    if found.record is None:
        return answer(job, "unknown_card")
    if "mirror_short" in found.record.flags and found.new:
        ic.warnings.warn("grey_mirror_short", terminal_id=request.terminal_id, atc=request.atc)
    return answer(job, "done", {48: record_elements(found.record)})


async def grey_result(job: Job) -> Message:
    return await ic_flow(job, NAME, _result, debit=True)


FLOW = Flow(ic_rules(NAME, advice=True), grey_result)
