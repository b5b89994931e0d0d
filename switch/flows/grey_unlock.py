"""Unlock request (1604, function code 683): a grey-locked card at its next use.

From any terminal at any node: the card's open grey record (the one of 48-50's ATC
when given) is closed and its debit posted, once, and the answer tells the card
what to do: 48-53 `C` complete the debit of the amount (also in field 4) or `X`
clear it (nothing was taken), with the original terminal and local time, and
48-50/51/52 the ATC, TAC, pump and nozzle of the grey transaction. A repeat (with
the ATC) answers the same. 118 no card record, 914 no grey record to unlock.
"""

from __future__ import annotations

import time

from forecourt.codecs.message import Message
from forecourt.switch.flows.base import Flow, Job
from forecourt.switch.grey import GreyAnswer, GreyUnlock
from forecourt.switch.grey.answering import answer, ic_flow, ic_rules
from forecourt.switch.grey.messages import IcRequest, record_elements
from forecourt.switch.grey.service import IcCards

NAME = "grey_unlock"


async def _unlock(job: Job, ic: IcCards, request: IcRequest) -> Message:
    found = await ic.write(
        GreyUnlock(ic.card_ref(request.pan), request.atc, request.terminal_id, ic.node, time.time())
    )
    assert isinstance(found, GreyAnswer)
    if found.record is None:
        ic.metrics.unlocks.labels(outcome="declined").inc()
        return answer(job, found.code)  # unknown_card or no_grey_record
    ic.metrics.unlocks.labels(outcome=found.code if found.new else "repeat").inc()
    if found.new:
        job.log.info("grey_unlocked", instruction=found.code, original=found.record.terminal_id)
    amount = found.record.final_amount or 0
    return answer(
        job,
        "done",
        {4: f"{amount:012d}", 48: record_elements(found.record, found.code)},
    )


async def grey_unlock(job: Job) -> Message:
    return await ic_flow(job, NAME, _unlock, debit=False)


FLOW = Flow(ic_rules(NAME, advice=False), grey_unlock)
