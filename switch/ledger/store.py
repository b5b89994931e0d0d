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

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from .model import Decision, Limits, Settled, day_start, month_start
from .ops import LedgerAuthorise, LedgerComplete, LedgerExpire, LedgerInquire, LedgerReverse
from .rules import Card, Usage, check_card, check_limits, check_products, odometer_flags

__all__ = ["LedgerSql", "authorise", "complete", "expire", "inquire", "post", "reverse"]


class Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...
    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...


class LedgerSql:
    """How one backend runs the ledger's statements: `run` executes (statements
    written with `?`, converted here), `lock` is PostgreSQL's " FOR UPDATE" or ""
    on SQLite, whose one writer already serialises every transaction."""

    def __init__(
        self,
        run: Callable[[str, Sequence[object]], Cursor],
        convert: Callable[[str], str],
        lock: str,
    ) -> None:
        self._run = run
        self._convert = convert
        self.lock = lock

    def __call__(self, sql: str, params: Sequence[object] = ()) -> Cursor:
        return self._run(self._convert(sql), params)

    def one(self, sql: str, params: Sequence[object] = ()) -> Any:
        return self(sql, params).fetchone()


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


def post(
    sql: LedgerSql,
    account_id: str,
    kind: str,
    debit: str,
    credit: str,
    amount: int,
    at: float,
    reference: str | None = None,
    operator: str | None = None,
    note: str | None = None,
) -> None:
    """One double-entry posting, and the account's books moved with it. A debit of
    `available` is conditional: it raises (the write is undone) rather than overdraw."""
    if amount <= 0:
        return
    sets = []
    params: list[object] = []
    for book, sign in ((debit, -1), (credit, 1)):
        if book in ("available", "held", "settled"):
            sets.append(f"{book} = {book} + ?")
            params.append(sign * amount)
    where = "account_id = ?"
    params.append(account_id)
    if debit in ("available", "held"):
        where += f" AND {debit} >= ?"
        params.append(amount)
    if (
        sets
        and sql(f"UPDATE ledger_accounts SET {', '.join(sets)} WHERE {where}", params).rowcount != 1
    ):
        raise OverdraftRefused(f"{debit} of {account_id} is short of {amount}")
    sql(
        "INSERT INTO ledger_postings (at, account_id, reference, kind, debit, credit, amount, "
        "operator, note) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (at, account_id, reference, kind, debit, credit, amount, operator, note),
    )


class OverdraftRefused(Exception):
    """A debit found less than it needed: a bug upstream of `post`, never a state."""


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
