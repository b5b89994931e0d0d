"""Journal rows for the business-day tests, and an independent model of a day's totals."""

from __future__ import annotations

import itertools
from collections.abc import Iterable

import attrs
from forecourt.switch.day.totals import DayLine
from forecourt.switch.journal import InsertTransaction, Journal, JournalRow, new_txn_id

_STANS = itertools.count(1)


def sale(at: float, amount: int = 1000, **over: object) -> JournalRow:
    """An approved purchase at `at` (answered 0.1 s later)."""
    fields: dict[str, object] = {
        "txn_id": new_txn_id(),
        "node": "n1",
        "terminal_id": "T0000001",
        "stan": f"{next(_STANS) % 999_999:06d}",
        "mti_class": "2",
        "request_mti": "1200",
        "received_at": at,
        "state": "approved",
        "action_code": "000",
        "amount": amount,
        "currency": "978",
        "processing_code": "000000",
        "route": "bank",
        "tender": "bank",
        "operator_id": "op1",
        "answered_at": at + 0.1,
    }
    fields.update(over)
    return JournalRow(**fields)  # type: ignore[arg-type]


async def insert(journal: Journal, *rows: JournalRow) -> None:
    await journal.write(*(InsertTransaction(r) for r in rows))


def model(rows: Iterable[JournalRow]) -> list[DayLine]:
    """What the day's totals must be, computed here without SQL."""
    sums: dict[tuple[str, str, str, str], list[int]] = {}
    for r in rows:
        if r.mti_class != "2":
            continue
        refund = (r.processing_code or "00")[:2] == "20"
        if r.state == "approved":
            category = "refund" if refund else "sale"
        elif r.state in ("reversed", "reversal_pending") and (r.action_code or "")[:1] == "0":
            category = "refund_reversal" if refund else "sale_reversal"
        else:
            continue
        amount = r.approved_amount if r.approved_amount is not None else (r.amount or 0)
        keys = (r.tender, r.route, r.terminal_id, r.operator_id)
        for dimension, key in zip(
            ("tender", "acquirer", "terminal", "operator"), keys, strict=True
        ):
            acc = sums.setdefault((dimension, key or "none", r.currency or "", category), [0, 0])
            acc[0] += 1
            acc[1] += amount
    return sorted(DayLine(*k, c, a) for k, (c, a) in sums.items())


def without_late(lines: Iterable[DayLine]) -> list[DayLine]:
    return sorted(attrs.evolve(line, late=False) for line in lines)
