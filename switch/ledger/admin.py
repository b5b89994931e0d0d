"""Operators' changes to the ledger and their reads, each one journal write operation.

Every change writes its audit row (who, what, which account or masked card) in the
same transaction as the change: there is no change without its audit, nor the
reverse. A change refused (an unknown account, a negative top-up) returns a
`Refused` naming the thing, and writes nothing.
"""

from __future__ import annotations

import json

from .model import Refused
from .ops import (
    LedgerAddCard,
    LedgerAuditList,
    LedgerBalances,
    LedgerCards,
    LedgerCardStatus,
    LedgerFund,
    LedgerOpenAccount,
    LedgerSetLimits,
    LedgerStatement,
)
from .postings import LedgerSql, OverdraftRefused, post

__all__ = [
    "add_card",
    "audit_list",
    "balances",
    "cards",
    "fund",
    "open_account",
    "set_limits",
    "set_status",
    "statement",
]


def _audit(
    sql: LedgerSql, at: float, operator: str, action: str, subject: str, **detail: object
) -> None:
    sql(
        "INSERT INTO ledger_audit (at, operator, action, subject, detail) VALUES (?, ?, ?, ?, ?)",
        (at, operator, action, subject, json.dumps(detail, sort_keys=True) if detail else ""),
    )


def _account_exists(sql: LedgerSql, account_id: str) -> bool:
    return sql.one("SELECT 1 FROM ledger_accounts WHERE account_id = ?", (account_id,)) is not None


def _masked(sql: LedgerSql, card_ref: str) -> tuple[str, str] | None:
    r = sql.one("SELECT masked_pan, status FROM ledger_cards WHERE card_ref = ?", (card_ref,))
    return None if r is None else (str(r[0]), str(r[1]))


def open_account(sql: LedgerSql, op: LedgerOpenAccount) -> Refused | None:
    if _account_exists(sql, op.account_id):
        return Refused(f"account {op.account_id!r} exists already")
    sql(
        "INSERT INTO ledger_accounts (account_id, kind, name, currency, created_at) "
        "VALUES (?, ?, ?, ?, ?)",
        (op.account_id, op.kind, op.name, op.currency, op.at),
    )
    _audit(sql, op.at, op.operator, "create-account", op.account_id, kind=op.kind, name=op.name)
    return None


def add_card(sql: LedgerSql, op: LedgerAddCard) -> Refused | None:
    r = sql.one("SELECT kind FROM ledger_accounts WHERE account_id = ?", (op.account_id,))
    if r is None:
        return Refused(f"unknown account {op.account_id!r}: create it first")
    if r[0] == "consumer" and op.binding != "none":
        return Refused(
            f"account {op.account_id!r} is a consumer account: "
            "its cards bind to no vehicle or driver"
        )
    if r[0] == "fleet" and op.binding == "none":
        return Refused(
            f"account {op.account_id!r} is a fleet account: bind the card to a vehicle or a driver"
        )
    if _masked(sql, op.card_ref) is not None:
        return Refused(f"card {op.masked_pan} is on the ledger already")
    sql(
        "INSERT INTO ledger_cards (card_ref, account_id, masked_pan, binding, bound_to, products, "
        "created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            op.card_ref,
            op.account_id,
            op.masked_pan,
            op.binding,
            op.bound_to,
            ",".join(op.products),
            op.at,
        ),
    )
    _audit(
        sql,
        op.at,
        op.operator,
        "add-card",
        op.account_id,
        card=op.masked_pan,
        binding=op.binding,
        bound_to=op.bound_to,
        products=",".join(op.products),
    )
    return None


def set_status(sql: LedgerSql, op: LedgerCardStatus) -> Refused | None:
    found = _masked(sql, op.card_ref)
    if found is None:
        return Refused("unknown card: add it to an account first")
    masked, status = found
    if status == op.status:
        return Refused(f"card {masked} is {status} already")
    if status == "lost":
        return Refused(f"card {masked} is lost: a lost card is never reactivated, issue a new one")
    sql("UPDATE ledger_cards SET status = ? WHERE card_ref = ?", (op.status, op.card_ref))
    _audit(sql, op.at, op.operator, f"card-{op.status}", masked, was=status)
    return None


def fund(sql: LedgerSql, op: LedgerFund) -> Refused | None:
    if not _account_exists(sql, op.account_id):
        return Refused(f"unknown account {op.account_id!r}")
    if op.kind == "topup" and op.amount <= 0:
        return Refused(f"a top-up must be positive, not {op.amount}")
    if op.amount == 0:
        return Refused("an adjustment of 0 changes nothing")
    book = "funding" if op.kind == "topup" else "adjustment"
    debit, credit = (book, "available") if op.amount > 0 else ("available", book)
    try:
        post(
            sql,
            op.account_id,
            op.kind,
            debit,
            credit,
            abs(op.amount),
            op.at,
            operator=op.operator,
            note=op.note,
        )
    except OverdraftRefused:
        return Refused(f"account {op.account_id!r} has less than {-op.amount} available")
    _audit(sql, op.at, op.operator, op.kind, op.account_id, amount=op.amount, note=op.note)
    return None


def set_limits(sql: LedgerSql, op: LedgerSetLimits) -> Refused | None:
    found = _masked(sql, op.card_ref)
    if found is None:
        return Refused("unknown card: add it to an account first")
    values = op.limits.as_row()
    sql("DELETE FROM ledger_limits WHERE card_ref = ? AND level = ?", (op.card_ref, op.level))
    sql(
        "INSERT INTO ledger_limits (card_ref, level, per_txn_amount, daily_amount, monthly_amount, "
        "per_txn_volume, daily_volume, monthly_volume) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (op.card_ref, op.level, *values),
    )
    if op.products is not None:
        sql(
            "UPDATE ledger_cards SET products = ? WHERE card_ref = ?",
            (",".join(op.products), op.card_ref),
        )
    products = None if op.products is None else ",".join(op.products)
    _audit(
        sql,
        op.at,
        op.operator,
        "set-limits",
        found[0],
        level=op.level,
        limits=list(values),
        products=products,
    )
    return None


def statement(sql: LedgerSql, op: LedgerStatement) -> Refused | list[tuple[object, ...]]:
    if not _account_exists(sql, op.account_id):
        return Refused(f"unknown account {op.account_id!r}")
    rows = sql(
        "SELECT id, at, kind, debit, credit, amount, reference, operator, note "
        "FROM ledger_postings WHERE account_id = ? AND at >= ? AND at < ? ORDER BY id",
        (op.account_id, op.since, op.until),
    ).fetchall()
    return [tuple(r) for r in rows]


def balances(sql: LedgerSql, op: LedgerBalances) -> Refused | list[tuple[object, ...]]:
    where, params = ("WHERE account_id = ?", (op.account_id,)) if op.account_id else ("", ())
    rows = sql(
        f"SELECT account_id, kind, name, currency, available, held, settled FROM ledger_accounts "
        f"{where} ORDER BY account_id",
        params,
    ).fetchall()
    if op.account_id and not rows:
        return Refused(f"unknown account {op.account_id!r}")
    return [tuple(r) for r in rows]


def cards(sql: LedgerSql, op: LedgerCards) -> list[tuple[object, ...]]:
    where, params = ("WHERE account_id = ?", (op.account_id,)) if op.account_id else ("", ())
    rows = sql(
        f"SELECT masked_pan, account_id, binding, bound_to, status, products, last_odometer "
        f"FROM ledger_cards {where} ORDER BY account_id, masked_pan",
        params,
    ).fetchall()
    return [tuple(r) for r in rows]


def audit_list(sql: LedgerSql, op: LedgerAuditList) -> list[tuple[object, ...]]:
    rows = sql(
        "SELECT id, at, operator, action, subject, detail FROM ledger_audit "
        "ORDER BY id DESC LIMIT ?",
        (op.limit,),
    ).fetchall()
    return [tuple(r) for r in rows]
