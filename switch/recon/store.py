"""Reconciliation's writes, run inside the journal writer's transaction: a file's
lines kept all or nothing, and an item closed once (the database refuses a second
action on an item: `recon_actions.item_id` is unique)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from .model import ACTIONS, ImportResult, ItemRefused
from .ops import ActOnItem, ImportFile
from .parse import read_lines

__all__ = ["Sql", "act", "import_file"]

_PROGRESS_EVERY = 5000


class Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...
    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...


class Sql:
    """Statements written with `?`, converted for the backend, run in its transaction."""

    def __init__(
        self, run: Callable[[str, Sequence[object]], Cursor], convert: Callable[[str], str]
    ) -> None:
        self._run = run
        self._convert = convert
        self._cache: dict[str, str] = {}

    def __call__(self, sql: str, params: Sequence[object] = ()) -> Cursor:
        converted = self._cache.get(sql)
        if converted is None:
            converted = self._cache[sql] = self._convert(sql)
        return self._run(converted, params)

    def one(self, sql: str, params: Sequence[object] = ()) -> Any:
        return self(sql, params).fetchone()


_INSERT_LINES = (
    "INSERT INTO recon_lines (party, line_id, file_sha, line_no, reference, amount,"
    " currency, at, type, masked_pan) VALUES {values}"
    " ON CONFLICT (party, line_id) DO NOTHING"
)
_ROW = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
# lines per INSERT: one statement per line cost most of an import's time in calls
_CHUNK = 250


def import_file(sql: Sql, op: ImportFile) -> ImportResult:
    party = op.party.name
    if sql.one("SELECT 1 FROM recon_files WHERE party = ? AND sha256 = ?", (party, op.sha256)):
        return ImportResult(party, op.sha256, 0, 0, already=True)
    lines = new = done = 0
    pending: list[object] = []

    def flush() -> int:
        count = len(pending) // 10
        values = ", ".join([_ROW] * count)
        cur = sql(_INSERT_LINES.format(values=values), pending)
        pending.clear()
        return max(cur.rowcount, 0)

    with op.path.open(encoding="utf-8", newline="") as text:
        for line in read_lines(op.party, text):
            lines += 1
            pending += (
                party, line.line_id, op.sha256, line.line_no, line.reference,
                line.amount, line.currency, line.at, line.type, line.masked_pan,
            )  # fmt: skip
            if lines % _CHUNK == 0:
                new += flush()
            if op.progress is not None and lines % _PROGRESS_EVERY == 0:
                op.progress(lines - done)
                done = lines
    if pending:
        new += flush()
    sql(
        "INSERT INTO recon_files (party, sha256, name, lines, new_lines, imported_at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (party, op.sha256, op.path.name, lines, new, op.at),
    )
    if op.progress is not None:
        op.progress(lines - done)
    return ImportResult(party, op.sha256, lines, new, already=False)


def act(sql: Sql, op: ActOnItem) -> None:
    if op.action not in ACTIONS:
        raise ItemRefused(f"unknown action {op.action!r} (one of {', '.join(ACTIONS)})")
    if not op.operator.strip():
        raise ItemRefused("the operator is required")
    row = sql.one("SELECT state FROM recon_items WHERE id = ?", (op.item_id,))
    if row is None:
        raise ItemRefused(f"no item {op.item_id}")
    if row[0] != "open":
        raise ItemRefused(f"item {op.item_id} is resolved already")
    if op.advice is not None:
        _record_advice(sql, op)
    # the unique item_id makes a second resolution fail even if two nodes race here
    sql(
        "INSERT INTO recon_actions (item_id, action, operator, at, reason, detail)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (op.item_id, op.action, op.operator, op.at, op.reason, op.detail),
    )
    sql("UPDATE recon_items SET state = 'resolved' WHERE id = ?", (op.item_id,))


def _record_advice(sql: Sql, op: ActOnItem) -> None:
    """One advice per transaction, whichever item asks: checked here, in the writer's
    transaction, and held by the primary key when two nodes write at once."""
    advice = op.advice
    assert advice is not None
    held = sql.one("SELECT item_id FROM recon_advices WHERE txn_id = ?", (advice.txn_id,))
    if held is not None:
        raise ItemRefused(
            f"item {op.item_id}: an advice of {advice.txn_id} was sent already (item"
            f" {held[0]}): close this item with resolve"
        )
    # another node's advice of the transaction, uncommitted when read above: the insert
    # waits for it and adds nothing (PostgreSQL's error would not name the table)
    added = sql(
        "INSERT INTO recon_advices (txn_id, item_id, link, mti, how, at) VALUES (?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (txn_id) DO NOTHING",
        (advice.txn_id, op.item_id, advice.link, advice.mti, advice.how, op.at),
    )
    if added.rowcount == 0:
        raise ItemRefused(
            f"item {op.item_id}: an advice of {advice.txn_id} was sent already, by another"
            " item at the same moment: close this item with resolve"
        )
    # the sealed request kept for this advice ([recon] keep_sealed_days) is used once
    sql("DELETE FROM recon_sealed WHERE txn_id = ?", (advice.txn_id,))
