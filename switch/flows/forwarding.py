"""Sending a request to the authoriser its card routes to, and relaying the answer.

Shared by the flows that ask a party for a decision (authorisation, financial,
balance inquiry). Before anything leaves, one durable write holds the transaction
row and, for a flow that parks one, its reversal; the answer's write cancels or
re-arms it. So nothing is approved at a party without a journalled answer or a
queued reversal, whatever kind of party it is.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from forecourt.codecs.action_codes import Outcome, is_approved
from forecourt.codecs.message import Message
from forecourt.codecs.payment_code import payment_code_of
from forecourt.switch.answers import local_answer, relay_answer
from forecourt.switch.authoriser import (
    Authoriser,
    AuthoriserBusy,
    AuthoriserError,
    AuthoriserKeysUnavailable,
    AuthoriserTimeout,
)
from forecourt.switch.flows.base import PARKED_S, Job
from forecourt.switch.flows.original_route import original_route
from forecourt.switch.journal import (
    AddEvent,
    CompleteSaf,
    Event,
    InsertTransaction,
    RetrySaf,
    WriteOp,
)
from forecourt.switch.reversal import ReversalReason, saf_payload, switch_reversal
from forecourt.switch.routing import NoRoute
from forecourt.switch.stand_in import Unanswered
from forecourt.switch.transaction import TxnRecord, journal_row, pan_of
from forecourt.switch.translate import across_families
from forecourt.switch.zone_pins import PinRefused


def authoriser_for(job: Job, route: str | None = None) -> Authoriser | Outcome:
    """The authoriser the card (or payment code) routes to, or why there is none.

    `route`: already known (a refund goes where the sale it names went)."""
    record = job.txn
    router = job.services.router
    pan = pan_of(job.request)
    record.tender = router.tender(pan or "")
    try:
        if route is None:
            # a card wins; a wallet payment code (ifsf 48-60) is read only without one
            code = None if pan else payment_code_of(job.request)
            route = router.route_payment_code(code) if code else router.route(pan or "")
    except NoRoute:
        return Outcome.DECLINED
    record.route = route
    authoriser = job.services.authorisers.get(route)
    if authoriser is None or not authoriser.available:
        return Outcome.ISSUER_UNAVAILABLE
    return authoriser


# What may answer instead of 912/911 when the authoriser gave no answer (stand-in).
Instead = Callable[[Job, Authoriser, Unanswered], Awaitable[Message | None]]


async def _instead(
    job: Job, instead: Instead | None, authoriser: Authoriser | None, why: Unanswered
) -> Message | None:
    if instead is None or authoriser is None:
        return None
    return await instead(job, authoriser, why)


def arm_reversal(record: TxnRecord, reason: str, at: float) -> None:
    record.state = "reversal_pending"
    if record.parked_saf_id is not None:
        record.pending_ops.append(RetrySaf(record.parked_saf_id, reason, at))


async def forward(job: Job, instead: Instead | None = None) -> Message:
    """Ask the routed authoriser; the answer made the terminal's. `instead` may answer
    when the authoriser gave none (no link, or a timeout before any answer)."""
    request, record, services = job.request, job.txn, job.services
    family = job.ctx.dialect.family
    found = authoriser_for(job, await original_route(job))
    if isinstance(found, Outcome):
        record.state = "declined"
        job.log.warning("route_unavailable", route=record.route)
        if found is Outcome.ISSUER_UNAVAILABLE:
            link = services.authorisers.get(record.route or "")
            standing = await _instead(job, instead, link, Unanswered.NO_LINK)
            if standing is not None:
                return standing
        return local_answer(request, family, found)
    authoriser = found
    route = authoriser.name
    host_family = authoriser.family
    parks = record.reversible
    upstream = across_families(request.with_fields({64: None, 128: None}), family, host_family)
    try:
        upstream = await services.keys.pin_upstream(upstream, record.terminal_id, route)
    except PinRefused as exc:
        # not "incorrect PIN" (117/55): the PIN was never checked, the block is
        # unusable here (no TPK, wrong key or length, or the security module out of
        # reach), a fault of keys, not of the cardholder
        record.state = "declined"
        if exc.unavailable:
            services.metrics.rejections.labels(reason="security_module_unavailable").inc()
        job.log.warning("pin_block_refused", route=route, reason=exc.reason)
        return local_answer(request, family, Outcome.SYSTEM_MALFUNCTION)
    journal = services.journal

    async def journal_before_send(sent: Message) -> None:
        record.sent = sent
        record.acquirer_stan = sent.fields.get("11")
        record.acquirer_id = sent.fields.get("32")
        record.state = "forwarded"
        record.forwarded_at = time.time()
        ops: list[WriteOp] = [
            InsertTransaction(journal_row(record, services.node)),
            AddEvent(Event(record.txn_id, record.forwarded_at, "forwarded", route)),
        ]
        if parks:
            reversal = switch_reversal(
                sent, sent.fields["11"], host_family, ReversalReason.HOST_TIMEOUT
            )
            ops.append(
                journal.saf_enqueue_op(
                    record.txn_id,
                    route,
                    reversal.mti,
                    saf_payload(reversal),
                    next_attempt_at=record.forwarded_at + PARKED_S,
                )
            )
        results = await journal.write(*ops)
        record.inserted = True
        saf_id = results[-1] if parks else None
        record.parked_saf_id = saf_id if isinstance(saf_id, int) else None

    try:
        answer = await authoriser.authorise(upstream, before_send=journal_before_send)
    except AuthoriserTimeout:
        services.metrics.host_timeouts.labels(link=route).inc()
        if parks:
            job.log.warning("host_timeout_reversal_queued", route=route)
            arm_reversal(record, "host timeout", time.time())
        else:
            job.log.warning("host_timeout", route=route)
            record.state = "timed_out"
        standing = await _instead(job, instead, authoriser, Unanswered.TIMEOUT)
        if standing is not None:
            return standing
        return local_answer(request, family, Outcome.ISSUER_TIMEOUT)
    except AuthoriserKeysUnavailable as exc:
        # the security module could not MAC the request: nothing was sent or
        # journalled as sent; 909/96 as for any key fault, and no stand-in
        record.state = "declined"
        if exc.unavailable:
            services.metrics.rejections.labels(reason="security_module_unavailable").inc()
        job.log.warning("request_mac_not_computed", route=route, code=exc.code)
        return local_answer(request, family, Outcome.SYSTEM_MALFUNCTION)
    except AuthoriserError as exc:
        # nothing reached the party (busy, or the connection broke before sending)
        record.state = "declined"
        job.log.warning("authoriser_unavailable", route=route, reason=type(exc).__name__)
        if record.parked_saf_id is not None:
            if isinstance(exc, AuthoriserBusy) or record.sent is None:
                record.pending_ops.append(CompleteSaf(record.parked_saf_id))
            else:
                arm_reversal(record, "link broke while sending", time.time())
        if not isinstance(exc, AuthoriserBusy):  # busy: the link is up, only full
            why = Unanswered.NO_LINK if record.sent is None else Unanswered.TIMEOUT
            standing = await _instead(job, instead, authoriser, why)
            if standing is not None:
                return standing
        return local_answer(request, family, Outcome.ISSUER_UNAVAILABLE)
    record.host_ms = answer.seconds * 1000.0
    record.flags = (*record.flags, *answer.flags)
    services.metrics.host_latency_of(route).observe(answer.seconds)
    relayed = relay_answer(
        request, across_families(answer.message, host_family, family), family, host_family
    )
    code = relayed.fields.get("39", "")
    approved = is_approved(code, family)
    record.state = "approved" if approved else "declined"
    record.approved_amount = relayed.fields.get("4", record.amount) if approved else None
    record.rrn, record.auth_code = answer.message.fields.get("37"), answer.message.fields.get("38")
    if record.parked_saf_id is not None and not approved:
        # approved: the reversal stays parked in the journal (erased after the hold
        # window) until the terminal reverses or completes it or closes its shift
        record.pending_ops.append(CompleteSaf(record.parked_saf_id))
    return relayed
