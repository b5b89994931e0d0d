"""The grey records and the debits they post, run inside the journal writer's transaction.

Each function is one write operation. The record is read `FOR UPDATE` on
PostgreSQL before anything is decided, so a result at node A and an unlock at
node B for the same card transaction take turns, and the second sees the record
closed; on SQLite the one writer serialises them. Closing a record and debiting
the card's ledger account are the same transaction, and the debit's ledger row
is keyed by card and counter (`ic|<card ref>|<atc>`), so a record is debited once.

The card holds its own balance; the ledger account is the back office's mirror of
it. The mirror is debited once, when the record closes, by what the card took; a
mirror short of it is debited what it has and the record flagged `mirror_short`.
"""

from __future__ import annotations

from typing import Any

from forecourt.switch.ledger.postings import LedgerSql, post

from .ops import (
    CardFacts,
    GreyAnswer,
    GreyCardCheck,
    GreyCounts,
    GreyFlagStale,
    GreyList,
    GreyLock,
    GreyRecord,
    GreyResult,
    GreyUnlock,
)
from .schema import GREY_STATES

__all__ = ["card_check", "counts", "flag_stale", "listing", "lock", "result", "unlock"]

_COLS = (
    "card_ref, atc, masked_pan, account_id, amount, currency, terminal_id, pump, nozzle, "
    "local_time, tac, node, recorded_at, state, closed_by, final_amount, debited, closed_at, "
    "closing_terminal, closing_node, closing_tac, flagged_at, flags"
)
_OPEN = "('open', 'flagged')"


def _record(r: Any) -> GreyRecord:
    def opt_int(v: Any) -> int | None:
        return None if v is None else int(v)

    def opt_float(v: Any) -> float | None:
        return None if v is None else float(v)

    def opt_str(v: Any) -> str | None:
        return None if v is None else str(v)

    return GreyRecord(
        card_ref=str(r[0]),
        atc=int(r[1]),
        masked_pan=str(r[2]),
        account_id=str(r[3]),
        amount=int(r[4]),
        currency=str(r[5]),
        terminal_id=str(r[6]),
        pump=str(r[7]),
        nozzle=str(r[8]),
        local_time=str(r[9]),
        tac=str(r[10]),
        node=str(r[11]),
        recorded_at=float(r[12]),
        state=str(r[13]),
        closed_by=opt_str(r[14]),
        final_amount=opt_int(r[15]),
        debited=int(r[16]),
        closed_at=opt_float(r[17]),
        closing_terminal=opt_str(r[18]),
        closing_node=opt_str(r[19]),
        closing_tac=opt_str(r[20]),
        flagged_at=opt_float(r[21]),
        flags=str(r[22]),
    )


def _card(sql: LedgerSql, card_ref: str) -> tuple[str, str, str] | None:
    """(account id, masked PAN, status) of a ledger card."""
    r = sql.one(
        "SELECT account_id, masked_pan, status FROM ledger_cards WHERE card_ref = ?", (card_ref,)
    )
    return None if r is None else (str(r[0]), str(r[1]), str(r[2]))


def _get(sql: LedgerSql, card_ref: str, atc: int) -> GreyRecord | None:
    r = sql.one(
        f"SELECT {_COLS} FROM grey_records WHERE card_ref = ? AND atc = ?" + sql.lock,
        (card_ref, atc),
    )
    return None if r is None else _record(r)


def _insert(sql: LedgerSql, f: CardFacts, account_id: str, masked_pan: str) -> GreyRecord:
    sql(
        f"INSERT INTO grey_records ({_COLS}) VALUES "
        "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'open', NULL, NULL, 0, NULL, NULL, NULL, NULL, "
        "NULL, '')",
        (
            f.card_ref,
            f.atc,
            masked_pan,
            account_id,
            f.amount,
            f.currency,
            f.terminal_id,
            f.pump,
            f.nozzle,
            f.local_time,
            f.tac,
            f.node,
            f.at,
        ),
    )
    found = _get(sql, f.card_ref, f.atc)
    assert found is not None
    return found


def _debit(sql: LedgerSql, rec: GreyRecord, amount: int, at: float) -> tuple[int, str]:
    """Debit the mirror account by what the card took (what it has, when short), with
    the ledger's own row of it; (debited, flags)."""
    r = sql.one(
        "SELECT available FROM ledger_accounts WHERE account_id = ?" + sql.lock,
        (rec.account_id,),
    )
    available = int(r[0]) if r is not None else 0
    take = max(0, min(amount, available))
    reference = f"ic|{rec.card_ref}|{rec.atc}"
    post(sql, rec.account_id, "hold", "available", "held", take, at, reference)
    post(sql, rec.account_id, "capture", "held", "settled", take, at, reference)
    flags = "mirror_short" if take < amount else ""
    sql(
        "INSERT INTO ledger_txns (reference, kind, account_id, card_ref, requested, approved, "
        "held, captured, state, code, flags, created_at) "
        "VALUES (?, 'purchase', ?, ?, ?, ?, 0, ?, 'captured', 'approved', ?, ?)",
        (
            reference,
            rec.account_id,
            rec.card_ref,
            amount,
            take,
            take,
            f"ic_card{',' + flags if flags else ''}",
            at,
        ),
    )
    return take, flags


def _close(
    sql: LedgerSql,
    rec: GreyRecord,
    by: str,
    amount: int,
    terminal_id: str,
    node: str,
    tac: str | None,
    at: float,
) -> GreyRecord:
    debited, flags = _debit(sql, rec, amount, at) if amount > 0 else (0, "")
    state = "completed" if amount > 0 else "cleared"
    sql(
        "UPDATE grey_records SET state = ?, closed_by = ?, final_amount = ?, debited = ?, "
        "closed_at = ?, closing_terminal = ?, closing_node = ?, closing_tac = ?, flags = ? "
        "WHERE card_ref = ? AND atc = ?",
        (
            state,
            by,
            amount,
            debited,
            at,
            terminal_id,
            node,
            tac,
            ",".join(x for x in (rec.flags, flags) if x),
            rec.card_ref,
            rec.atc,
        ),
    )
    closed = _get(sql, rec.card_ref, rec.atc)
    assert closed is not None
    return closed


def lock(sql: LedgerSql, op: GreyLock) -> GreyAnswer:
    f = op.facts
    card = _card(sql, f.card_ref)
    if card is None:
        return GreyAnswer("unknown_card")
    seen = _get(sql, f.card_ref, f.atc)
    if seen is not None:
        return GreyAnswer("already", seen)
    return GreyAnswer("recorded", _insert(sql, f, card[0], card[1]), new=True)


def result(sql: LedgerSql, op: GreyResult) -> GreyAnswer:
    f = op.facts
    card = _card(sql, f.card_ref)
    if card is None:
        return GreyAnswer("unknown_card")
    rec = _get(sql, f.card_ref, f.atc)
    if rec is None:  # the lock's notification is still on its way (or was lost)
        rec = _insert(sql, f, card[0], card[1])
    if not rec.open:
        return GreyAnswer("already", rec)
    closed = _close(sql, rec, "result", f.amount, f.terminal_id, f.node, f.tac, f.at)
    return GreyAnswer("completed", closed, new=True)


def _instruction(rec: GreyRecord) -> str:
    return "complete" if (rec.final_amount or 0) > 0 else "clear"


def unlock(sql: LedgerSql, op: GreyUnlock) -> GreyAnswer:
    if _card(sql, op.card_ref) is None:
        return GreyAnswer("unknown_card")
    if op.atc is not None:
        rec = _get(sql, op.card_ref, op.atc)
    else:
        r = sql.one(
            f"SELECT {_COLS} FROM grey_records WHERE card_ref = ? AND state IN {_OPEN} "
            "ORDER BY recorded_at DESC, atc DESC LIMIT 1" + sql.lock,
            (op.card_ref,),
        )
        rec = None if r is None else _record(r)
    if rec is None:
        return GreyAnswer("no_grey_record")
    if not rec.open:  # closed already: the same instruction again, nothing debited twice
        return GreyAnswer(_instruction(rec), rec)
    closed = _close(sql, rec, "unlock", rec.amount, op.terminal_id, op.node, None, op.at)
    return GreyAnswer(_instruction(closed), closed, new=True)


def card_check(sql: LedgerSql, op: GreyCardCheck) -> GreyAnswer:
    card = _card(sql, op.card_ref)
    if card is None:
        return GreyAnswer("unknown_card")
    r = sql.one("SELECT available, currency FROM ledger_accounts WHERE account_id = ?", (card[0],))
    return GreyAnswer(card[2], available=int(r[0]), currency=str(r[1]), masked_pan=card[1])


def flag_stale(sql: LedgerSql, op: GreyFlagStale) -> int:
    """Open records older than the limit become flagged (they stay closable by an
    unlock); a record is flagged once."""
    rows = sql(
        "SELECT card_ref, atc FROM grey_records WHERE state = 'open' AND recorded_at < ? "
        "ORDER BY recorded_at LIMIT ?",
        (op.older_than, op.limit),
    ).fetchall()
    flagged = 0
    for card_ref, atc in rows:
        flagged += sql(
            "UPDATE grey_records SET state = 'flagged', flagged_at = ? "
            "WHERE card_ref = ? AND atc = ? AND state = 'open'",
            (op.at, card_ref, atc),
        ).rowcount
    return flagged


def listing(sql: LedgerSql, op: GreyList) -> list[GreyRecord]:
    if op.state is None:
        rows = sql(
            f"SELECT {_COLS} FROM grey_records ORDER BY recorded_at DESC LIMIT ?", (op.limit,)
        ).fetchall()
    else:
        rows = sql(
            f"SELECT {_COLS} FROM grey_records WHERE state = ? ORDER BY recorded_at DESC LIMIT ?",
            (op.state, op.limit),
        ).fetchall()
    return [_record(r) for r in rows]


def counts(sql: LedgerSql, op: GreyCounts) -> dict[str, int]:
    found = {s: 0 for s in GREY_STATES}
    for state, n in sql("SELECT state, count(*) FROM grey_records GROUP BY state", ()).fetchall():
        found[str(state)] = int(n)
    return found
