"""What a ledger decision reads and records: cards, locked accounts, usage against
limits, and the `ledger_txns` row each request leaves (its decision, replayed for a
request seen before). Run inside the journal writer's transaction, through `LedgerSql`.
"""

from __future__ import annotations

from typing import Any

from .model import Decision, Limits, day_start, month_start
from .ops import LedgerAuthorise, LedgerComplete
from .postings import LedgerSql
from .rules import Card, Usage, check_limits

_CARD = "SELECT card_ref, account_id, status, products, last_odometer FROM ledger_cards"
_TXN = (
    "SELECT reference, kind, account_id, card_ref, requested, approved, held, captured, "
    "state, code, flags FROM ledger_txns WHERE reference = ?"
)


def _card(sql: LedgerSql, card_ref: str) -> Card | None:
    r = sql.one(_CARD + " WHERE card_ref = ?", (card_ref,))
    if r is None:
        return None
    products = tuple(p for p in str(r[3]).split(",") if p)
    return Card(str(r[0]), str(r[1]), str(r[2]), products, None if r[4] is None else int(r[4]))


def _lock_account(sql: LedgerSql, account_id: str) -> tuple[int, int, str]:
    """(available, held, currency) of the account, locked until the transaction ends."""
    r = sql.one(
        "SELECT available, held, currency FROM ledger_accounts WHERE account_id = ?" + sql.lock,
        (account_id,),
    )
    return int(r[0]), int(r[1]), str(r[2])


def _usage(sql: LedgerSql, card_ref: str, at: float) -> Usage:
    def period(since: float) -> tuple[int, int]:
        r = sql.one(
            "SELECT coalesce(sum(held + captured), 0), coalesce(sum(volume_ml), 0) "
            "FROM ledger_txns WHERE card_ref = ? AND created_at >= ? "
            "AND kind IN ('purchase', 'preauth', 'completion') AND state <> 'declined'",
            (card_ref, since),
        )
        return int(r[0]), int(r[1])

    day_amount, day_volume = period(day_start(at))
    month_amount, month_volume = period(month_start(at))
    return Usage(day_amount, month_amount, day_volume, month_volume)


def _limits(sql: LedgerSql, card_ref: str, level: str) -> Limits | None:
    r = sql.one(
        "SELECT per_txn_amount, daily_amount, monthly_amount, per_txn_volume, daily_volume, "
        "monthly_volume FROM ledger_limits WHERE card_ref = ? AND level = ?",
        (card_ref, level),
    )
    return None if r is None else Limits(*(None if v is None else int(v) for v in r))


def _over_limit(
    sql: LedgerSql, card_ref: str, level: str, at: float, amount: int, volume_ml: int
) -> str | None:
    """limit_exceeded, or None; the usage is summed only for a card with limits."""
    limits = _limits(sql, card_ref, level)
    if limits is None:
        return None
    return check_limits(limits, _usage(sql, card_ref, at), amount, volume_ml)


def _record(
    sql: LedgerSql,
    op: LedgerAuthorise | LedgerComplete,
    kind: str,
    account_id: str | None,
    approved: int,
    held: int,
    captured: int,
    state: str,
    code: str,
    flags: tuple[str, ...],
    original: str | None = None,
    expires_at: float | None = None,
) -> None:
    p = op.facts.prompted
    sql(
        "INSERT INTO ledger_txns (reference, kind, account_id, card_ref, requested, approved, "
        "held, captured, volume_ml, state, code, original, driver, vehicle, odometer, flags, "
        "created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            op.reference,
            kind,
            account_id,
            op.card_ref,
            op.amount,
            approved,
            held,
            captured,
            op.facts.volume_ml if state != "declined" else 0,
            state,
            code,
            original,
            p.driver,
            p.vehicle,
            p.odometer,
            ",".join(flags),
            op.at,
            expires_at,
        ),
    )


def _available(sql: LedgerSql, account_id: str | None) -> tuple[int, str]:
    if account_id is None:
        return 0, ""
    r = sql.one(
        "SELECT available, currency FROM ledger_accounts WHERE account_id = ?", (account_id,)
    )
    return (int(r[0]), str(r[1])) if r is not None else (0, "")


def _replay(sql: LedgerSql, seen: Any) -> Decision:
    """The decision already taken for a request seen before (a retransmission that
    got past the switch's duplicate check, or a repeat after a lost answer)."""
    available, currency = _available(sql, seen[2])
    code = str(seen[9]) if seen[1] != "tombstone" else "reversed_before"
    flags = tuple(f for f in str(seen[10]).split(",") if f)
    return Decision(code, int(seen[4]), int(seen[5]), available, currency, flags)
