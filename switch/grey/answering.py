"""What the four IC card flows share: their rules, reading the request, the answer
codes, and the typed errors turned into one action code and one log line.

Action codes (ISO 8583:1993, docs/terminal-interfaces.md): 000 done, 104 card
blocked, 208 card lost, 118 no card record, 914 no grey record to unlock, 129 TAC
did not verify (suspected counterfeit card), 904 a field missing or malformed,
909 the journal refused the write, 115 IC cards not enabled.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from forecourt.codecs.fields import mask_pan
from forecourt.codecs.message import Message
from forecourt.codecs.mti import response_mti
from forecourt.switch.answers import NOT_ECHOED
from forecourt.switch.flows.base import FlowRules, Job
from forecourt.switch.flows.unsupported import not_supported

from .messages import IcRequest, MalformedIcMessage, read_request
from .service import GreyUnavailable, IcCards

__all__ = ["CODES", "IcBody", "answer", "ic_flow", "ic_rules", "tac_refused"]

CODES = {
    "done": "000",
    "card_blocked": "104",
    "card_lost": "208",
    "unknown_card": "118",
    "no_grey_record": "914",
    "tac_failed": "129",
    "format_error": "904",
    "system_malfunction": "909",
}

IcBody = Callable[[Job, IcCards, IcRequest], Awaitable[Message]]


def ic_rules(name: str, *, advice: bool) -> FlowRules:
    """MAC and sign-on as for a financial message; not a `transactions` row (the grey
    record is the durable record, idempotent by card and counter); field 7 checked on
    requests, not on advices, which a terminal repeats late from its store."""
    return FlowRules(
        name,
        needs_mac=True,
        needs_signed_on=True,
        journalled=False,
        mac_answer=True,
        checks_transmission_time=not advice,
    )


def answer(job: Job, outcome: str, updates: dict[int, str | None] | None = None) -> Message:
    """The answer (1614 / 1634) with the outcome's action code, echoing the request's
    identifying fields and never the card."""
    request = job.request
    fields = {k: v for k, v in request.fields.items() if k not in NOT_ECHOED}
    fields["39"] = CODES[outcome]
    message = Message(mti=response_mti(request.mti), fields=fields)
    return message.with_fields(updates) if updates else message


async def ic_flow(job: Job, name: str, body: IcBody, *, debit: bool) -> Message:
    """Run one IC card flow: read the request, `body`, and the shared refusals."""
    ic = job.services.settings.ic_cards
    if ic is None:
        return await not_supported(job)
    try:
        request = read_request(job.request, debit=debit)
    except MalformedIcMessage as exc:
        ic.metrics.format_errors.inc()
        ic.metrics.messages.labels(flow=name, outcome="format_error").inc()
        ic.warnings.warn(
            "ic_card_format_error",
            flow=name,
            terminal_id=job.request.fields.get("41"),
            field=exc.field,
            reason=exc.reason,
        )
        return answer(job, "format_error")
    try:
        message = await body(job, ic, request)
    except GreyUnavailable:
        ic.metrics.messages.labels(flow=name, outcome="system_malfunction").inc()
        return answer(job, "system_malfunction")
    code = message.fields.get("39", "")
    ic.metrics.messages.labels(flow=name, outcome=code).inc()
    job.log.info("ic_card", card=mask_pan(request.pan), atc=request.atc, action_code=code)
    return message


def tac_refused(job: Job, ic: IcCards, name: str, request: IcRequest) -> Message | None:
    """The 129 answer when the TAC check refuses the card's TAC; None when it passes."""
    assert request.atc is not None and request.tac is not None and request.amount is not None
    if ic.tac_check.verify(
        request.pan, request.atc, request.amount, request.terminal_id, request.tac
    ):
        return None
    ic.metrics.tac_failures.inc()
    ic.warnings.warn(
        "ic_card_tac_failed",
        flow=name,
        terminal_id=request.terminal_id,
        card=mask_pan(request.pan),
        atc=request.atc,
        check=ic.tac_check.name,
    )
    return answer(job, "tac_failed")
