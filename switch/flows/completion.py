"""Advice (1220/1221, 0220/0221): the completion after fuelling, for the actual amount.

Linked to its pre-authorisation through 56/90, queued in SAF for the
pre-authorisation's authoriser and acknowledged once durable. An unknown or
expired pre-authorisation is still forwarded, and flagged; a completion cancels
the reversal parked for the end of the completion window.
"""

from __future__ import annotations

import time

from forecourt.codecs.action_codes import Outcome
from forecourt.codecs.message import Message
from forecourt.switch.answers import local_answer
from forecourt.switch.authoriser import Authoriser
from forecourt.switch.flows.base import Flow, FlowRules, Job
from forecourt.switch.flows.forwarding import authoriser_for
from forecourt.switch.flows.saf_queue import queue_for_authoriser
from forecourt.switch.journal import CancelParked, JournalRow
from forecourt.switch.reversal import original_reference


async def complete(job: Job) -> Message:
    request, record, services = job.request, job.txn, job.services
    family = job.ctx.dialect.family
    ref = original_reference(request, family)
    preauth: JournalRow | None = None
    if ref is not None:
        preauth = await services.journal.find_by_terminal_key("1", record.terminal_id, ref[1])
    flags: list[str] = []
    authoriser: Authoriser | None = None
    if preauth is None:
        flags.append("preauth_unknown")
    else:
        record.original_txn_id = preauth.txn_id
        answered = preauth.answered_at or preauth.received_at
        if (
            preauth.state != "approved"
            or time.time() - answered > services.settings.preauth_window_s
        ):
            flags.append("preauth_expired")
        if preauth.route is not None:
            authoriser = services.authorisers.get(preauth.route)
            record.route = preauth.route
    if authoriser is None:
        routed = authoriser_for(job)
        authoriser = (
            services.authorisers.get(record.route or "") if isinstance(routed, Outcome) else routed
        )
    if authoriser is None:
        record.state = "declined"
        return local_answer(request, family, Outcome.ISSUER_UNAVAILABLE)
    record.route = authoriser.name
    record.flags = tuple(flags)
    record.state = "approved"
    record.approved_amount = record.amount
    queue_for_authoriser(services.journal, request, family, record, authoriser, preauth)
    if preauth is not None and preauth.state == "approved":
        # completed: the reversal due at the end of the window must not go
        record.pending_ops.append(CancelParked(preauth.txn_id, "completed"))
    if flags:
        job.log.warning("completion_flagged", flags=",".join(flags))
    return local_answer(request, family, Outcome.APPROVED)


# accepted after a sign-off too: the fuel is in the tank
FLOW = Flow(FlowRules("advice", needs_signed_on=False), complete)
