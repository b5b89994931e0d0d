"""IC card check (1604, function code 680): the card's status and balance, no debit.

Answered from the ledger (the back office's mirror of the card): 000 with the
status in 48-54 and the account's available balance in field 54 (amount type 02),
104 blocked or 208 lost (status and balance still given), 118 no card record.
"""

from __future__ import annotations

from forecourt.codecs.amounts import AVAILABLE_BALANCE, AdditionalAmount, encode_field54
from forecourt.codecs.field48 import encode_field48
from forecourt.codecs.message import Message
from forecourt.switch.flows.base import Flow, Job
from forecourt.switch.grey import GreyAnswer, GreyCardCheck
from forecourt.switch.grey.answering import answer, ic_flow, ic_rules
from forecourt.switch.grey.messages import STATUS_LETTERS, IcRequest
from forecourt.switch.grey.service import IcCards

NAME = "ic_card_check"
_OUTCOMES = {"active": "done", "blocked": "card_blocked", "lost": "card_lost"}


async def _check(job: Job, ic: IcCards, request: IcRequest) -> Message:
    found = await ic.write(GreyCardCheck(ic.card_ref(request.pan)))
    assert isinstance(found, GreyAnswer)
    if found.code == "unknown_card":
        return answer(job, "unknown_card")
    balance = AdditionalAmount("00", AVAILABLE_BALANCE, found.currency, found.available)
    return answer(
        job,
        _OUTCOMES.get(found.code, "card_blocked"),
        {
            48: encode_field48({54: STATUS_LETTERS.get(found.code, "B")}),
            54: encode_field54([balance]),
        },
    )


async def card_check(job: Job) -> Message:
    return await ic_flow(job, NAME, _check, debit=False)


FLOW = Flow(ic_rules(NAME, advice=False), card_check)
