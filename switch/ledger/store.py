"""The ledger's money movements, run inside the journal writer's transaction.

Each function is one write operation: it reads what it decides on, checks, and
posts, all in the caller's database transaction. On PostgreSQL the account row is
read `FOR UPDATE` first, so a second node's debit of the same account waits for
this transaction and then sees its result; every debit is also a conditional
UPDATE (`available >= amount`) and the table has CHECK (available >= 0), so an
overdraft is refused three times over. Balances are kept in `ledger_accounts` with
the postings, in the same transaction; `ledger_postings` is the double-entry record.
"""

from __future__ import annotations

from .model import Decision, Settled
from .ops import LedgerAuthorise, LedgerComplete, LedgerExpire, LedgerInquire, LedgerReverse
from .postings import LedgerSql, post
from .records import _TXN, _available, _card, _lock_account, _over_limit, _record, _replay
from .rules import check_card, check_products, odometer_flags

__all__ = ["authorise", "complete", "expire", "inquire", "reverse"]


def authorise(sql: LedgerSql, op: LedgerAuthorise) -> Decision:
    seen = sql.one(_TXN, (op.reference,))
    if seen is not None:
        return _replay(sql, seen)
    card = _card(sql, op.card_ref)
    refused = check_card(card)
    if card is None or refused is not None:
        _record(
            sql,
            op,
            op.kind,
            card.account_id if card else None,
            0,
            0,
            0,
            "declined",
            refused or "unknown_card",
            (),
        )
        available, currency = _available(sql, card.account_id if card else None)
        return Decision(refused or "unknown_card", op.amount, 0, available, currency)
    available, _, currency = _lock_account(sql, card.account_id)
    flags = odometer_flags(card, op.facts)
    refusal = (
        ("declined" if currency != op.currency else None)
        or check_products(card, op.facts, op.kind)
        or _over_limit(sql, card.card_ref, op.facts.level, op.at, op.amount, op.facts.volume_ml)
        or ("odometer" if flags and op.odometer_declines else None)
    )
    take = min(op.amount, available)
    if refusal is None and (take <= 0 or (take < op.amount and not op.partial)):
        refusal = "insufficient_funds"
    if refusal is not None:
        _record(sql, op, op.kind, card.account_id, 0, 0, 0, "declined", refusal, flags)
        return Decision(refusal, op.amount, 0, available, currency, flags)
    code = "approved" if take == op.amount else "partial"
    post(sql, card.account_id, "hold", "available", "held", take, op.at, op.reference)
    if op.kind == "purchase":
        post(sql, card.account_id, "capture", "held", "settled", take, op.at, op.reference)
    held, captured = (take, 0) if op.kind == "preauth" else (0, take)
    state = "open" if op.kind == "preauth" else "captured"
    _record(
        sql,
        op,
        op.kind,
        card.account_id,
        take,
        held,
        captured,
        state,
        code,
        flags,
        expires_at=op.expires_at,
    )
    reading = op.facts.prompted.odometer
    if reading is not None and (card.last_odometer is None or reading > card.last_odometer):
        sql(
            "UPDATE ledger_cards SET last_odometer = ? WHERE card_ref = ?", (reading, card.card_ref)
        )
    return Decision(code, op.amount, take, available - take, currency, flags)


def inquire(sql: LedgerSql, op: LedgerInquire) -> Decision:
    card = _card(sql, op.card_ref)
    refused = check_card(card)
    if card is None or refused is not None:
        return Decision(refused or "unknown_card")
    available, currency = _available(sql, card.account_id)
    return Decision("approved", 0, 0, available, currency)


def complete(sql: LedgerSql, op: LedgerComplete) -> Settled:
    """Capture the actual amount, release the rest of the hold at once. A completion
    for more than is held, or of a hold already released, takes the difference from
    what is available, never more (flagged `completion_short` when it falls short)."""
    target = sql.one(_TXN, (op.original,)) if op.original is not None else None
    account_id = str(target[2]) if target is not None and target[2] is not None else None
    if account_id is None:
        card = _card(sql, op.card_ref)
        account_id = card.account_id if card is not None else None
    if account_id is None:
        return Settled("original_not_found")
    # Everything decided from here is read under the account's lock: another node
    # completing or reversing the same original waits, then sees what this one did.
    available, _, _ = _lock_account(sql, account_id)
    if sql.one(_TXN, (op.reference,)) is not None:
        return Settled("already")
    if op.original is not None:
        if sql.one(
            "SELECT 1 FROM ledger_txns WHERE original = ? AND kind = 'completion'", (op.original,)
        ):
            return Settled("already")  # a second advice for the same original
        target = sql.one(_TXN, (op.original,))
    held = int(target[6]) if target is not None and target[8] == "open" else 0
    from_hold = min(op.amount, held)
    extra = min(op.amount - from_hold, available)
    flags: tuple[str, ...] = ()
    if from_hold + extra < op.amount:
        flags += ("completion_short",)
    if target is None or target[1] != "preauth":
        # approved offline by the terminal: too late to decline, the offline limits flag
        flags += ("no_preauthorisation",)
        if _over_limit(sql, op.card_ref, "offline", op.at, op.amount, op.facts.volume_ml):
            flags += ("offline_over_limit",)
    post(sql, account_id, "capture", "held", "settled", from_hold, op.at, op.reference)
    post(sql, account_id, "release", "held", "available", held - from_hold, op.at, op.reference)
    post(sql, account_id, "hold", "available", "held", extra, op.at, op.reference)
    post(sql, account_id, "capture", "held", "settled", extra, op.at, op.reference)
    if target is not None and target[1] == "preauth":
        sql(
            "UPDATE ledger_txns SET held = 0, state = ? WHERE reference = ?",
            ("captured" if target[8] == "open" else str(target[8]), op.original),
        )
    captured = from_hold + extra
    _record(
        sql,
        op,
        "completion",
        account_id,
        captured,
        0,
        captured,
        "captured",
        "approved",
        flags,
        original=op.original,
    )
    return Settled("approved", captured=captured, restored=held - from_hold, flags=flags)


def reverse(sql: LedgerSql, op: LedgerReverse) -> Settled:
    """Give back what the original takes or holds, down to `to_amount`; a second
    reversal finds nothing left to give. An original never seen is remembered as
    reversed (a tombstone), so it is refused if it ever arrives."""
    target = sql.one(_TXN, (op.original,))
    if target is None:
        sql(
            "INSERT INTO ledger_txns (reference, kind, state, code, created_at) "
            "VALUES (?, 'tombstone', 'reversed', 'reversed_before', ?)",
            (op.original, op.at),
        )
        return Settled("original_not_found")
    if target[2] is None:
        return Settled("already")
    account_id = str(target[2])
    _lock_account(sql, account_id)  # then read again: a second node's reversal waits here
    target = sql.one(_TXN, (op.original,))
    if target[8] in ("reversed", "declined"):
        return Settled("already")
    held, captured = int(target[6]), int(target[7])
    keep = 0 if op.to_amount is None else max(0, op.to_amount)
    give_captured = max(0, captured - keep)
    give_held = max(0, held - max(0, keep - captured))
    if give_captured == 0 and give_held == 0 and op.to_amount is not None:
        return Settled("already")
    post(sql, account_id, "reversal", "held", "available", give_held, op.at, op.original)
    post(sql, account_id, "reversal", "settled", "available", give_captured, op.at, op.original)
    state = "reversed" if op.to_amount is None or keep == 0 else str(target[8])
    sql(
        "UPDATE ledger_txns SET held = ?, captured = ?, state = ? WHERE reference = ?",
        (held - give_held, captured - give_captured, state, op.original),
    )
    return Settled("approved", restored=give_held + give_captured)


def expire(sql: LedgerSql, op: LedgerExpire) -> int:
    """Release the holds of pre-authorisations left open past their window, in account
    order (two nodes expiring at once lock accounts in the same order)."""
    rows = sql(
        "SELECT reference, account_id, held FROM ledger_txns WHERE state = 'open' "
        "AND expires_at <= ? ORDER BY account_id, reference LIMIT ?",
        (op.now, op.limit),
    ).fetchall()
    released = 0
    for reference, account_id, _held in rows:
        _lock_account(sql, str(account_id))
        current = sql.one(_TXN + " AND state = 'open'", (reference,))
        if current is None:
            continue  # completed or reversed since the first read (another node)
        post(
            sql,
            str(account_id),
            "release",
            "held",
            "available",
            int(current[6]),
            op.now,
            str(reference),
            note="pre-authorisation window ended",
        )
        sql("UPDATE ledger_txns SET held = 0, state = 'released' WHERE reference = ?", (reference,))
        released += 1
    return released
