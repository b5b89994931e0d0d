"""Cashier (operator) sign-on and sign-off at a terminal: 1804 / 1814, function 880 / 881.

The cashier's id travels in 48-15. The journal keeps the terminal's current cashier
(switch/terminals/roster.py), every transaction row records it (`operator_id`),
and a shift close totals per cashier. A sign-on replaces whoever was signed on; a
sign-off ends it. Both are ordinary requests of a signed-on terminal: MAC'd under
its TAK where its group requires MACs, answered 800 with a MAC. The 1987 dialects
have no such message (their 0800 is answered 115 / 40 "function not supported").
"""

from __future__ import annotations

from forecourt.codecs.action_codes import Outcome
from forecourt.codecs.errors import CodecError
from forecourt.codecs.field48 import decode_field48, encode_field48
from forecourt.codecs.message import Message
from forecourt.switch.answers import local_answer
from forecourt.switch.flows.base import Flow, FlowRules, Job

SIGN_ON_CODE = "880"
SIGN_OFF_CODE = "881"


def _operator_id(request: Message) -> str | None:
    """48-15, when present and a printable id; None otherwise."""
    raw = request.fields.get("48")
    if raw is None:
        return None
    try:
        value = decode_field48(raw).get(15)
    except CodecError:
        return None
    if not isinstance(value, str) or not value.strip() or not value.isprintable():
        return None
    return value


def _answer(job: Job, outcome: Outcome, operator_id: str | None = None) -> Message:
    answer = local_answer(job.request, job.ctx.dialect.family, outcome)
    if operator_id is None:
        return answer
    return answer.with_fields({48: encode_field48({15: operator_id})})


async def sign_on(job: Job) -> Message:
    operator_id = _operator_id(job.request)
    if operator_id is None:
        job.services.metrics.malformed.labels(side="terminal", reason="operator_id").inc()
        job.log.warning("cashier_sign_on_without_operator_id")
        return _answer(job, Outcome.FORMAT_ERROR)
    terminal_id = job.request.fields["41"]
    replaced = await job.services.roster.sign_on(terminal_id, operator_id)
    job.log.info("cashier_signed_on", operator_id=operator_id, replaced=replaced)
    return _answer(job, Outcome.NETWORK_ACCEPTED, operator_id)


async def sign_off(job: Job) -> Message:
    terminal_id = job.request.fields["41"]
    previous = await job.services.roster.sign_off(terminal_id)
    job.log.info("cashier_signed_off", operator_id=previous)
    return _answer(job, Outcome.NETWORK_ACCEPTED, previous)


def _rules(name: str) -> FlowRules:
    return FlowRules(name, journalled=False)


SIGN_ON = Flow(_rules("cashier_sign_on"), sign_on)
SIGN_OFF = Flow(_rules("cashier_sign_off"), sign_off)
