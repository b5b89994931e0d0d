"""Stand-in: the switch approves a purchase itself while its ISO 8583 acquirer is down.

Called by `forward` when the acquirer gave no answer (no link, or a timeout before
any answer). When `[stand_in]` lets the purchase through (`switch/stand_in.py`), the
terminal hears an approval with the switch's own approval code (38) and RRN (37),
and the answer's one durable write also holds, in the SAF queue under the purchase:

1. after a timeout, the reversal of the timed-out request, due now (`forward` armed it);
2. the advice of the stand-in approval (1220 / 0220), due now;
3. a reversal of that advice, parked for the hold window like any approved purchase's.

SAF delivers one transaction's items in that order (`saf` claims none while an
earlier one is due, in flight or flagged), so the host hears the reversal before
the advice, and the advice before anything that takes it back.
"""

from __future__ import annotations

import json
import secrets
import time

from forecourt.codecs.action_codes import Outcome
from forecourt.codecs.family import Family
from forecourt.codecs.message import Message
from forecourt.codecs.network import transmission_time
from forecourt.switch.answers import local_answer
from forecourt.switch.authoriser import Authoriser
from forecourt.switch.flows.base import PARKED_S, Job
from forecourt.switch.journal import (
    AddEvent,
    CompleteSaf,
    Event,
    Journal,
    JournalRow,
    RetrySaf,
    WriteOp,
)
from forecourt.switch.journal.model import PARKED_HORIZON_S
from forecourt.switch.reversal import (
    ReversalReason,
    point_at_host_original,
    saf_payload,
    switch_reversal,
)
from forecourt.switch.stand_in import Unanswered
from forecourt.switch.transaction import TxnRecord, pan_of
from forecourt.switch.translate import across_families, convert_mti

STAND_IN = "stand_in"  # the journal flag of a stand-in approval

# What the advice carries over from the request as the host would have seen it.
_ADVISED = ("2", "3", "4", "12", "13", "14", "22", "26", "32", "41", "42", "43", "49")
# Never in an advice: PIN data (52, 53), track data (35, 45), ICC data (55).
_NEVER_ADVISED = frozenset({"35", "45", "52", "53", "55"})


def approval_code() -> str:
    """Field 38 of a stand-in approval: "S" and five digits, never a host's "A1B2C3"."""
    return f"S{secrets.randbelow(100_000):05d}"


def retrieval_reference(at: float) -> str:
    """Field 37: YDDDHH (UTC) and six random digits, numeric as hosts expect."""
    stamp = time.strftime("%y%j%H", time.gmtime(at))[1:]
    return f"{stamp}{secrets.randbelow(1_000_000):06d}"


def advice_of(
    upstream: Message, family: Family, approval: str, rrn: str, why: Unanswered
) -> Message:
    """The advice of a stand-in approval, from the request in the host's family."""
    fields = {k: v for k, v in upstream.fields.items() if k in _ADVISED}
    fields["7"] = transmission_time()
    fields["11"] = upstream.fields.get("11", "000000")  # the link's STAN when sent
    fields["37"] = rrn
    fields["38"] = approval
    if family is Family.ISO1993:
        fields["24"] = "200"  # original financial advice
        fields["25"] = why.value
        fields["39"] = "000"
        return Message(mti="1220", fields=fields)
    fields["39"] = "00"
    return Message(mti="0220", fields=fields)


def _card_of(request: Message) -> dict[int, str | None]:
    """Fields 2 and 14 from track 2 (PAN, separator, YYMM)."""
    pan = pan_of(request)
    track = request.fields.get("35", "")
    rest = track[len(pan) + 1 :] if pan else ""
    return {2: pan, 14: rest[:4] if len(rest) >= 4 and rest[:4].isdigit() else None}


def _host_request(job: Job, authoriser: Authoriser) -> Message:
    """The request as the host saw it, or would have (no PIN, the link's field 32)."""
    record = job.txn
    if record.sent is not None:
        return record.sent
    request = job.request.with_fields({k: None for k in (52, 53, 64, 128)})
    upstream = across_families(request, job.ctx.dialect.family, authoriser.family)
    if "32" not in upstream.fields and authoriser.acquirer_id:
        upstream = upstream.with_fields({32: authoriser.acquirer_id})
    return upstream


async def stand_in(job: Job, authoriser: Authoriser, why: Unanswered) -> Message | None:
    """The stand-in approval of the request, or None: then the caller's 912/911 stands."""
    policy = job.services.settings.stand_in
    if policy is None or not policy.config.enabled:
        return None
    request, record, services = job.request, job.txn, job.services
    family = job.ctx.dialect.family
    check = policy.check(request, family, authoriser.kind, pan_of(request) or "")
    if check.refusal is not None:
        job.log.info(
            "stand_in_refused",
            route=authoriser.name,
            reason=check.refusal,
            product=check.product,
            method=None if check.method is None else check.method.value,
        )
        return None
    assert check.method is not None
    now = time.time()
    approval, rrn = approval_code(), retrieval_reference(now)
    journal = services.journal
    host_family = authoriser.family
    advice = advice_of(
        _host_request(job, authoriser).with_fields({int(k): None for k in _NEVER_ADVISED}),
        host_family,
        approval,
        rrn,
        why,
    )
    if "2" not in advice.fields:
        # track data only: the advice names the card by its PAN and expiry, never the track
        advice = advice.with_fields(_card_of(request))
    reversal = switch_reversal(advice, advice.fields["11"], host_family, ReversalReason.OPERATOR)
    reversal = reversal.with_fields({37: rrn, 38: approval})
    detail = {
        "why": why.name.lower(),
        "product": check.product,
        "verification": check.method.value,
        "floor": check.floor,
        "auth_code": approval,
        "rrn": rrn,
    }
    record.pending_ops += [
        *journal.update_ops(
            record.txn_id, flags=(*record.flags, STAND_IN), rrn=rrn, auth_code=approval
        ),
        AddEvent(Event(record.txn_id, now, "stand_in_approved", json.dumps(detail))),
        journal.saf_enqueue_op(
            record.txn_id, authoriser.name, advice.mti, saf_payload(advice), now=now
        ),
        journal.saf_enqueue_op(
            record.txn_id,
            authoriser.name,
            reversal.mti,
            saf_payload(reversal),
            now=now,
            next_attempt_at=now + PARKED_S,
        ),
    ]
    record.flags = (*record.flags, STAND_IN)
    record.state = "approved"
    record.approved_amount = request.fields.get("4")
    # the parked reversal of the request (armed by a timeout) is not this one's: a
    # terminal gone now reverses the stand-in approval, after its advice (`undelivered`)
    record.sent = None
    record.parked_saf_id = None
    services.metrics.stand_in_approvals.labels(
        link=authoriser.name, verification=check.method.value
    ).inc()
    job.log.warning(
        "stand_in_approved",
        route=authoriser.name,
        why=why.name.lower(),
        product=check.product,
        verification=check.method.value,
        floor=check.floor,
    )
    answer = local_answer(request, family, Outcome.APPROVED)
    return answer.with_fields({37: rrn, 38: approval})


async def _parked_reversal(journal: Journal, txn_id: str) -> int | None:
    """The stand-in approval's parked reversal, or None (the shift closed, the hold
    window passed, or it went already)."""
    horizon = time.time() + PARKED_HORIZON_S
    parked = [
        e.id
        for e in await journal.saf_entries_of([txn_id])
        if e.state == "pending" and e.mti[1] == "4" and e.next_attempt_at > horizon
    ]
    return parked[-1] if parked else None


async def reverse_stand_in(journal: Journal, txn_id: str, reason: str) -> list[WriteOp]:
    """Make a stand-in approval's parked reversal due: SAF sends it after the advice.

    Empty when none is held."""
    parked = await _parked_reversal(journal, txn_id)
    return [] if parked is None else [RetrySaf(parked, reason, time.time())]


async def partial_reversal_ops(
    journal: Journal, job: Job, authoriser: Authoriser, original: JournalRow
) -> list[WriteOp]:
    """A terminal's partial reversal of a stand-in approval, made to name its advice
    (1220 / 0220: the advice's STAN as queued, its RRN and approval code) and queued
    under the approval, after the advice; the full reversal parked for it goes."""
    host_family = authoriser.family
    request = job.request.with_fields({64: None, 128: None})
    upstream = across_families(request, job.ctx.dialect.family, host_family)
    upstream = point_at_host_original(
        upstream,
        host_family,
        convert_mti("1220", host_family),
        original.acquirer_stan or original.stan,
        original.acquirer_id or authoriser.acquirer_id,
    )
    upstream = upstream.with_fields({37: original.rrn, 38: original.auth_code})
    parked = await _parked_reversal(journal, original.txn_id)
    return [
        *([] if parked is None else [CompleteSaf(parked)]),
        journal.saf_enqueue_op(
            original.txn_id, authoriser.name, upstream.mti, saf_payload(upstream)
        ),
    ]


def is_stand_in(record: TxnRecord) -> bool:
    return STAND_IN in record.flags
