"""Grey-lock notification (1624, function code 681): the card set its grey flag.

The terminal repeats the advice until it is answered; the grey record is written
once (card reference + ATC), and a repeat gets the same 000 and record. 118 when
the ledger has no such card, 129 when the TAC check refuses the TAC (nothing
written), 904 when 48-50/51/52, 4, 12 or 49 is missing.
"""

from __future__ import annotations

import time

from forecourt.codecs.message import Message
from forecourt.switch.flows.base import Flow, Job
from forecourt.switch.grey import CardFacts, GreyAnswer, GreyLock
from forecourt.switch.grey.answering import answer, ic_flow, ic_rules, tac_refused
from forecourt.switch.grey.messages import IcRequest, record_elements
from forecourt.switch.grey.service import IcCards

NAME = "grey_lock"


def card_facts(ic: IcCards, request: IcRequest) -> CardFacts:
    """The facts of a grey-lock or result request (read_request checked them)."""
    assert request.atc is not None and request.tac is not None and request.amount is not None
    return CardFacts(
        card_ref=ic.card_ref(request.pan),
        atc=request.atc,
        amount=request.amount,
        currency=request.currency,
        terminal_id=request.terminal_id,
        pump=request.pump,
        nozzle=request.nozzle,
        local_time=request.local_time,
        tac=request.tac.hex().upper(),
        node=ic.node,
        at=time.time(),
    )


async def _lock(job: Job, ic: IcCards, request: IcRequest) -> Message:
    refused = tac_refused(job, ic, NAME, request)
    if refused is not None:
        return refused
    found = await ic.write(GreyLock(card_facts(ic, request)))
    assert isinstance(found, GreyAnswer)
    if found.record is None:
        return answer(job, "unknown_card")
    return answer(job, "done", {48: record_elements(found.record)})


async def grey_lock(job: Job) -> Message:
    return await ic_flow(job, NAME, _lock, debit=True)


FLOW = Flow(ic_rules(NAME, advice=True), grey_lock)
