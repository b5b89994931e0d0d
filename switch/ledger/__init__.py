"""The fleet and consumer ledger's data: accounts, cards, limits, double-entry postings.

Its operations are journal write operations (`ops`), applied by the journal's
writer in its own database (`apply_ledger`); the authoriser that turns ISO 8583
requests into them is `switch/authorisers/ledger/`. See docs/accounts.md.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from . import admin, store
from .model import Decision, Limits, Prompted, Refused, SaleFacts, Settled, card_reference
from .ops import (
    LEDGER_OPS,
    LedgerAddCard,
    LedgerAuditList,
    LedgerAuthorise,
    LedgerBalances,
    LedgerCards,
    LedgerCardStatus,
    LedgerComplete,
    LedgerExpire,
    LedgerFund,
    LedgerInquire,
    LedgerOp,
    LedgerOpenAccount,
    LedgerReverse,
    LedgerSetLimits,
    LedgerStatement,
)
from .postings import Cursor, LedgerSql, OverdraftRefused

__all__ = [
    "LEDGER_OPS",
    "Decision",
    "LedgerAddCard",
    "LedgerAuditList",
    "LedgerAuthorise",
    "LedgerBalances",
    "LedgerCardStatus",
    "LedgerCards",
    "LedgerComplete",
    "LedgerExpire",
    "LedgerFund",
    "LedgerInquire",
    "LedgerOp",
    "LedgerOpenAccount",
    "LedgerReverse",
    "LedgerSetLimits",
    "LedgerStatement",
    "Limits",
    "OverdraftRefused",
    "Prompted",
    "Refused",
    "SaleFacts",
    "Settled",
    "apply_ledger",
    "card_reference",
]


def apply_ledger(
    op: LedgerOp,
    run: Callable[[str, Sequence[object]], Cursor],
    convert: Callable[[str], str],
    lock: str,
) -> object:
    """Run one ledger operation in the caller's transaction; its result."""
    sql = LedgerSql(run, convert, lock)
    match op:
        case LedgerAuthorise():
            return store.authorise(sql, op)
        case LedgerInquire():
            return store.inquire(sql, op)
        case LedgerComplete():
            return store.complete(sql, op)
        case LedgerReverse():
            return store.reverse(sql, op)
        case LedgerExpire():
            return store.expire(sql, op)
        case LedgerOpenAccount():
            return admin.open_account(sql, op)
        case LedgerAddCard():
            return admin.add_card(sql, op)
        case LedgerCardStatus():
            return admin.set_status(sql, op)
        case LedgerFund():
            return admin.fund(sql, op)
        case LedgerSetLimits():
            return admin.set_limits(sql, op)
        case LedgerStatement():
            return admin.statement(sql, op)
        case LedgerBalances():
            return admin.balances(sql, op)
        case LedgerCards():
            return admin.cards(sql, op)
        case LedgerAuditList():
            return admin.audit_list(sql, op)
