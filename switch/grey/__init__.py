"""IC fuel cards: grey records of the card's two-step debit, and their unlock.

A stored-value fuel card holds its balance on the chip; the ledger (switch/ledger)
keeps the back office's mirror account and card. The grey records are a journal
domain of their own (`ops`, `store`, `apply_grey`), so every operation and the
ledger debit it posts run in the journal writer's one transaction. See
docs/terminal-interfaces.md, "IC fuel card".
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from forecourt.switch.ledger.postings import Cursor, LedgerSql, OverdraftRefused

from . import store
from .ops import (
    GREY_OPS,
    CardFacts,
    GreyAnswer,
    GreyCardCheck,
    GreyCounts,
    GreyFlagStale,
    GreyList,
    GreyLock,
    GreyOp,
    GreyRecord,
    GreyResult,
    GreyUnlock,
)

__all__ = [
    "GREY_OPS",
    "CardFacts",
    "GreyAnswer",
    "GreyCardCheck",
    "GreyCounts",
    "GreyFlagStale",
    "GreyList",
    "GreyLock",
    "GreyOp",
    "GreyRecord",
    "GreyResult",
    "GreyUnlock",
    "OverdraftRefused",
    "apply_grey",
]


def apply_grey(
    op: GreyOp,
    run: Callable[[str, Sequence[object]], Cursor],
    convert: Callable[[str], str],
    lock: str,
) -> object:
    """Run one grey-record operation in the caller's transaction; its result."""
    sql = LedgerSql(run, convert, lock)
    match op:
        case GreyLock():
            return store.lock(sql, op)
        case GreyResult():
            return store.result(sql, op)
        case GreyUnlock():
            return store.unlock(sql, op)
        case GreyCardCheck():
            return store.card_check(sql, op)
        case GreyFlagStale():
            return store.flag_stale(sql, op)
        case GreyList():
            return store.listing(sql, op)
        case GreyCounts():
            return store.counts(sql, op)
