"""One transaction as the switch works on it, and the journal row it becomes.

Two types, on purpose: a `TxnRecord` is mutable while the request is in hand and
holds what must never reach the journal (the message sent upstream, with its full
PAN, to build a reversal; the write operations due with the answer); a
`JournalRow` is the frozen, PAN-free row. `journal_row` is the one crossing.
"""

from __future__ import annotations

import attrs
from forecourt.codecs.message import Message
from forecourt.switch.journal import JournalRow, WriteOp


@attrs.define
class TxnRecord:
    """Mutable while the request is in hand; never holds a full PAN."""

    txn_id: str
    terminal_id: str
    stan: str
    mti_class: str
    request_mti: str
    masked_pan: str | None
    amount: str | None
    processing_code: str | None
    received_at: float
    currency: str | None = None
    shift_id: str | None = None
    state: str = "received"
    forwarded_at: float | None = None
    route: str | None = None
    acquirer_stan: str | None = None
    response_mti: str | None = None
    action_code: str | None = None
    approved_amount: str | None = None
    answered_at: float | None = None
    host_ms: float | None = None
    switch_ms: float | None = None
    answer_raw: bytes | None = None
    original_txn_id: str | None = None
    flags: tuple[str, ...] = ()
    # the flow parks a reversal for it (a balance inquiry takes nothing: it does not)
    reversible: bool = True
    # field 32 as it went upstream: a later reversal names the original's acquirer
    acquirer_id: str | None = None
    # split tender: the sale's group id, and the card's tender (fleet, consumer, bank)
    split_group: str | None = None
    tender: str | None = None
    # the cashier signed on at the terminal when the request arrived
    operator_id: str | None = None
    # the host's retrieval reference (37) and approval code (38): what its settlement
    # file names the transaction by (reconciliation, docs/reconciliation.md)
    rrn: str | None = None
    auth_code: str | None = None
    # what the host was sent (host family, switch STAN), to reverse it if need be
    sent: Message | None = None
    # the reversal parked in SAF while the request is at the host
    parked_saf_id: int | None = None
    # journal operations that must be durable together with the answer
    pending_ops: list[WriteOp] = attrs.field(factory=list)
    inserted: bool = False


def minor_units(amount: str | None) -> int | None:
    return int(amount) if amount and amount.isdigit() else None


def journal_row(record: TxnRecord, node: str) -> JournalRow:
    return JournalRow(
        txn_id=record.txn_id,
        node=node,
        terminal_id=record.terminal_id,
        stan=record.stan,
        mti_class=record.mti_class,
        request_mti=record.request_mti,
        received_at=record.received_at,
        state=record.state,
        amount=minor_units(record.amount),
        currency=record.currency,
        masked_pan=record.masked_pan,
        processing_code=record.processing_code,
        route=record.route,
        acquirer_stan=record.acquirer_stan,
        original_txn_id=record.original_txn_id,
        shift_id=record.shift_id,
        forwarded_at=record.forwarded_at,
        response_mti=record.response_mti,
        action_code=record.action_code,
        approved_amount=minor_units(record.approved_amount),
        answered_at=record.answered_at,
        host_ms=record.host_ms,
        switch_ms=record.switch_ms,
        response_raw=record.answer_raw,
        flags=record.flags,
        acquirer_id=record.acquirer_id,
        split_group=record.split_group,
        tender=record.tender,
        operator_id=record.operator_id,
        rrn=record.rrn,
        auth_code=record.auth_code,
    )


def pan_of(message: Message) -> str | None:
    """Field 2, or the PAN at the head of track 2."""
    pan = message.fields.get("2")
    if pan:
        return pan
    track = message.fields.get("35")
    if track:
        for sep in ("=", "D", "d"):
            if sep in track:
                return track.split(sep, 1)[0]
    return None
