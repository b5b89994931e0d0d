"""Batches of offline advices in the journal: which advice belongs to which batch, and
what the batch's trailer was answered.

A journal domain (switch/journal/domains.py): its operations run in the journal
writer's transaction. An advice's membership is written in the same durable write as
its transaction row and its SAF item, so after a crash an advice is either all three
or none of them; a re-upload finds the advice journalled (a retransmission) and the
membership already there. The trailer counts what the journal holds for the batch,
so a trailer sent again is answered the same, and one sent after the missing advices
were added is in balance.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

import attrs
from forecourt.codecs.errors import CodecError
from forecourt.codecs.field48 import decode_field48, encode_field48
from forecourt.codecs.message import Message
from forecourt.switch.journal.model import JournalRow

__all__ = [
    "BATCH_OPS",
    "BATCH_TOTALS",
    "AddBatchAdvice",
    "BatchResult",
    "BatchTotals",
    "CloseBatch",
    "apply_batches",
    "batch_flag",
    "batch_of",
    "is_batch_advice",
    "same_batch",
    "totals_field48",
    "trailer_of",
]

BATCH_NUMBER = 4  # ifsf 48-4, batch/sequence number (n10)
BATCH_TOTALS = 57  # forecourt's 48-57: count n6 then amount n12


class Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...
    def fetchone(self) -> Any: ...


@attrs.frozen
class AddBatchAdvice:
    """One advice of a batch; a second one with the same STAN changes nothing.
    Result: True when it was added."""

    terminal_id: str
    batch: str
    stan: str
    txn_id: str
    amount: int  # minor units
    at: float


@attrs.frozen
class CloseBatch:
    """A batch's trailer: what the terminal says it sent, checked against what the
    journal holds. Result: `BatchResult`."""

    terminal_id: str
    batch: str
    count: int
    amount: int
    at: float


@attrs.frozen
class BatchTotals:
    count: int
    amount: int  # minor units


@attrs.frozen
class BatchResult:
    switch: BatchTotals
    in_balance: bool
    trailers: int  # trailers received for this batch, this one included


BATCH_OPS: tuple[type, ...] = (AddBatchAdvice, CloseBatch)

_ADD = (
    "INSERT INTO batch_advices (terminal_id, batch, stan, txn_id, amount, at) "
    "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
)
_SUM = (
    "SELECT count(*), coalesce(sum(amount), 0) FROM batch_advices "
    "WHERE terminal_id = ? AND batch = ?"
)
_CLOSE = (
    "INSERT INTO batches (terminal_id, batch, trailers, terminal_count, terminal_amount, "
    "switch_count, switch_amount, in_balance, first_at, last_at) "
    "VALUES (?, ?, 1, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (terminal_id, batch) DO UPDATE SET trailers = batches.trailers + 1, "
    "terminal_count = excluded.terminal_count, terminal_amount = excluded.terminal_amount, "
    "switch_count = excluded.switch_count, switch_amount = excluded.switch_amount, "
    "in_balance = excluded.in_balance, last_at = excluded.last_at"
)
_TRAILERS = "SELECT trailers FROM batches WHERE terminal_id = ? AND batch = ?"


def apply_batches(
    op: AddBatchAdvice | CloseBatch,
    run: Callable[[str, Sequence[object]], Cursor],
    convert: Callable[[str], str],
    lock: str,
) -> object:
    """Run one batch operation in the caller's transaction; its result."""
    match op:
        case AddBatchAdvice():
            added = (op.terminal_id, op.batch, op.stan, op.txn_id, op.amount, op.at)
            return run(convert(_ADD), added).rowcount == 1
        case CloseBatch():
            key = (op.terminal_id, op.batch)
            row = run(convert(_SUM), key).fetchone()
            held = BatchTotals(int(row[0]), int(row[1]))
            in_balance = held == BatchTotals(op.count, op.amount)
            params = (*key, op.count, op.amount, held.count, held.amount, in_balance, op.at, op.at)
            run(convert(_CLOSE), params)
            trailers = int(run(convert(_TRAILERS), key).fetchone()[0])
            return BatchResult(held, in_balance, trailers)


def _elements(message: Message) -> dict[int, str | bytes]:
    raw = message.fields.get("48")
    if not raw:
        return {}
    try:
        return decode_field48(raw)
    except CodecError:
        return {}


def batch_of(message: Message) -> str | None:
    """The batch number an ifsf advice carries in 48-4, or None (a single advice)."""
    value = _elements(message).get(BATCH_NUMBER)
    return value if isinstance(value, str) else None


def is_batch_advice(message: Message) -> bool:
    """An ifsf advice (x220/x221) carrying a batch number."""
    return message.mti[1:3] == "22" and batch_of(message) is not None


_FLAG = "batch_"


def batch_flag(batch: str) -> str:
    """The journal flag of an advice of batch `batch` (`transactions.flags`)."""
    return _FLAG + batch


def same_batch(row: JournalRow, request: Message) -> bool:
    """`request` is an advice of a batch and `row`, with its key, was journalled as one:
    a copy, however long ago the row came. A batch is uploaded again after a 501 or a
    crash, each advice with a new field 7; the duplicate check's rule that a row
    received before (field 7 - tolerance) is an older use of the STAN would forward it
    twice. Any batch, not only the same number: an advice belongs to the batch it first
    came in, and a terminal's STANs take a million advices to come round."""
    return is_batch_advice(request) and any(f.startswith(_FLAG) for f in row.flags)


def trailer_of(message: Message) -> tuple[str, BatchTotals] | None:
    """(batch number, the terminal's count and amount) of a trailer; None when 48-4 or
    48-57 is missing (a format error)."""
    elements = _elements(message)
    batch, totals = elements.get(BATCH_NUMBER), elements.get(BATCH_TOTALS)
    if not isinstance(batch, str) or not isinstance(totals, str):
        return None
    return batch, BatchTotals(int(totals[:6]), int(totals[6:]))


def totals_field48(batch: str, totals: BatchTotals) -> str:
    """Field 48 of a trailer's answer: the batch number and the switch's totals."""
    count, amount = min(totals.count, 10**6 - 1), min(totals.amount, 10**12 - 1)
    return encode_field48({BATCH_NUMBER: batch, BATCH_TOTALS: f"{count:06d}{amount:012d}"})
