"""The durable answer write: the transaction row as the terminal is about to hear it.

One journal write before the answer goes: the row (or its update), its state event
and whatever the flow queued with it (SAF items, postings), so that a restart finds
every answer a terminal may have heard. The pipeline (switch/pipeline.py) calls it.
"""

from __future__ import annotations

import attrs
from forecourt.codecs.message import Message
from forecourt.switch.journal import AddEvent, Event, InsertTransaction, Journal, WriteOp
from forecourt.switch.transaction import TxnRecord, journal_row, minor_units

__all__ = ["journal_answer"]


async def journal_answer(journal: Journal, node: str, record: TxnRecord, answer: Message) -> None:
    """One durable write before the terminal hears the answer."""
    # the RRN and approval code the terminal was given: a status query finds and
    # answers with them (switch/flows/status_query.py)
    rrn, auth_code = answer.fields.get("37") or None, answer.fields.get("38") or None
    given: dict[str, str] = {}
    if rrn is not None:
        given["rrn"] = rrn
    if auth_code is not None:
        given["auth_code"] = auth_code
    ops: list[WriteOp]
    if not record.inserted:
        ops = [
            InsertTransaction(
                attrs.evolve(
                    journal_row(record, node),
                    rrn=rrn,
                    auth_code=auth_code,
                )
            ),
            AddEvent(Event(record.txn_id, record.received_at, record.state, None)),
        ]
    else:
        ops = journal.update_ops(
            record.txn_id,
            state=record.state,
            response_mti=record.response_mti,
            action_code=record.action_code,
            approved_amount=minor_units(record.approved_amount),
            answered_at=record.answered_at,
            host_ms=record.host_ms,
            switch_ms=record.switch_ms,
            response_raw=record.answer_raw,
            **({"flags": record.flags} if record.flags else {}),
            **given,
        )
    await journal.write(*ops, *record.pending_ops)
    record.inserted = True
