"""The ledger's double-entry book: one posting moves an account's books with it.

`LedgerSql` is how one backend runs the ledger's statements inside the journal
writer's transaction; `post` writes a posting to `ledger_postings` and moves
`ledger_accounts` in the same transaction, a debit of `available` or `held` only
when there is enough (a conditional UPDATE, with CHECK (available >= 0) behind it).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

__all__ = ["Cursor", "LedgerSql", "OverdraftRefused", "post"]


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
