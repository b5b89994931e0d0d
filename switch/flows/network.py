"""Network management (1804/1820, 0800): sign-on, sign-off, echo, key change.

Sign-on and key change rotate the terminal's working keys and deliver them under
its KEK in field 96 (1993) / 48 (1987); the answer is not MAC'd (the terminal
checks the keys' KCVs). Sign-on opens a shift when none is open and ends a
sign-off; sign-off declines financial requests until the next sign-on. An echo
needs no terminal id: hosts and clients send 0800 with only 7, 11 and 70.
"""

from __future__ import annotations

from forecourt.codecs.action_codes import Outcome
from forecourt.codecs.message import Message
from forecourt.switch.answers import local_answer
from forecourt.switch.flows.base import Flow, FlowRules, Job
from forecourt.switch.shifts import new_shift_id


async def sign_on(job: Job) -> Message:
    terminal_id = _terminal(job)
    answer = await _deliver_keys(job, terminal_id)
    services = job.services
    await services.guard.signed_on(terminal_id)
    # opens one only if the terminal has none open, at this node or any other
    await services.journal.shift_open(terminal_id, new_shift_id())
    job.log.info("network_management", function="sign_on")
    return answer


async def key_change(job: Job) -> Message:
    answer = await _deliver_keys(job, _terminal(job))
    job.log.info("network_management", function="key_change")
    return answer


async def sign_off(job: Job) -> Message:
    await job.services.guard.signed_off(_terminal(job))
    job.log.info("network_management", function="sign_off")
    return _accepted(job)


async def echo(job: Job) -> Message:
    job.log.debug("network_management", function="echo")
    return _accepted(job)


def _terminal(job: Job) -> str:
    terminal_id = job.request.fields.get("41")
    if terminal_id is None:  # the table's needs_terminal makes this unreachable
        raise ValueError("a network function that needs field 41 came without it")
    return terminal_id


def _accepted(job: Job) -> Message:
    return local_answer(job.request, job.ctx.dialect.family, Outcome.NETWORK_ACCEPTED)


async def _deliver_keys(job: Job, terminal_id: str) -> Message:
    """New working keys in the answer; active once the answer is on its way."""
    family = job.ctx.dialect.family
    keys = job.services.keys
    field, value = await keys.sign_on(terminal_id, family)
    answer = _accepted(job).with_fields({field: value})
    await keys.delivered(terminal_id)
    await job.services.guard.keys_delivered(terminal_id)
    return answer


def _rules(name: str, *, needs_terminal: bool = True) -> FlowRules:
    # no MAC yet on sign-on or key change: the security issue gives them one
    return FlowRules(
        name,
        needs_terminal=needs_terminal,
        needs_mac=False,
        needs_signed_on=False,
        journalled=False,
        mac_answer=False,
    )


SIGN_ON = Flow(_rules("sign_on"), sign_on)
KEY_CHANGE = Flow(_rules("key_change"), key_change)
# MAC'd under the TAK like a purchase: an unproven sign-off would be a way to shut any
# terminal out (a denial of service), where before the flow table it changed nothing
SIGN_OFF = Flow(
    FlowRules("sign_off", needs_signed_on=False, journalled=False),
    sign_off,
)
ECHO = Flow(_rules("echo", needs_terminal=False), echo)
