"""Network management (1804/1820, 0800): sign-on, sign-off, echo, key change.

Sign-on and key change rotate the terminal's working keys and deliver them under
its KEK in field 96 (1993) / 48 (1987). Both must be proven, whatever the group
says about MACs (docs/keys.md, "Sign-on and key change proofs"): a sign-on by a
MAC under the key derived from the terminal's KEK, a key change by a MAC under an
acceptable TAK; the pipeline refuses an unproven one (916 / 917, A0; a sign-on
also when its field 7 is stale or its proof was taken before) before this module
runs. The answer is not MAC'd: the TR-31 blocks and KCVs prove the keys.
A terminal over its rotations per minute is answered 912 / 92 and keeps its
keys. Sign-on opens a shift when none is open and ends a sign-off; sign-off
declines financial requests until the next sign-on. An echo needs no terminal id:
hosts and clients send 0800 with only 7, 11 and 70.
"""

from __future__ import annotations

from forecourt.codecs.action_codes import Outcome
from forecourt.codecs.message import Message
from forecourt.switch.answers import local_answer
from forecourt.switch.flows.base import Flow, FlowRules, Job
from forecourt.switch.params.sign_on import with_version_hint
from forecourt.switch.shifts import new_shift_id
from forecourt.switch.terminal_guard import Proof


async def sign_on(job: Job) -> Message:
    terminal_id = _terminal(job)
    answer = await _deliver_keys(job, terminal_id)
    if answer is None:
        return _too_often(job)
    services = job.services
    await services.guard.signed_on(terminal_id)
    # opens one only if the terminal has none open, at this node or any other
    await services.journal.shift_open(terminal_id, new_shift_id())
    job.log.info("network_management", function="sign_on")
    # the latest parameter version (48-20), from a cache: docs/terminal-interfaces.md
    family, catalogue = job.ctx.dialect.family, services.settings.params
    return await with_version_hint(answer, family, catalogue, services.journal)


async def key_change(job: Job) -> Message:
    answer = await _deliver_keys(job, _terminal(job))
    if answer is None:
        return _too_often(job)
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


def _too_often(job: Job) -> Message:
    """Over the rotations per minute: nothing rotated, try again later."""
    return local_answer(job.request, job.ctx.dialect.family, Outcome.ISSUER_UNAVAILABLE)


async def _deliver_keys(job: Job, terminal_id: str) -> Message | None:
    """New working keys in the answer (active once it is on its way); None over the
    terminal's rotation limit."""
    rotated = await job.services.keys.sign_on(terminal_id, job.ctx.dialect.family)
    if rotated is None:
        return None
    field, value = rotated
    await job.services.guard.keys_delivered(terminal_id)
    if not value:  # a DUKPT terminal: its proven request ends a lock; no keys to hand out
        return _accepted(job)
    return _accepted(job).with_fields({field: value})


def _rules(name: str, *, needs_terminal: bool = True, proof: Proof | None = None) -> FlowRules:
    return FlowRules(
        name,
        needs_terminal=needs_terminal,
        needs_mac=False,
        needs_signed_on=False,
        journalled=False,
        mac_answer=False,
        proof=proof,
    )


SIGN_ON = Flow(_rules("sign_on", proof=Proof.SIGN_ON_KEY), sign_on)
KEY_CHANGE = Flow(_rules("key_change", proof=Proof.TAK), key_change)
# proven under the TAK like a key change: an unproven sign-off would be a way to shut
# any terminal out (a denial of service), where before the flow table it changed nothing
SIGN_OFF = Flow(_rules("sign_off", proof=Proof.TAK), sign_off)
ECHO = Flow(_rules("echo", needs_terminal=False), echo)
