"""The journal's reads, once for both backends (``JournalReader``).

A backend's reader only says how to run a query (``_rows``, rows readable by
column name) and which statements to use (its ``Statements``); every read and
every conversion of a row into a value is here.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any, Protocol

from forecourt.switch.journal import statements as sql
from forecourt.switch.journal.apply import guard_state
from forecourt.switch.journal.model import (
    COLUMNS,
    PARKED_HORIZON_S,
    Event,
    GuardState,
    JournalRow,
    SafEntry,
    SafStats,
    ShiftRecord,
    ShiftTotals,
    SplitGroupState,
    TotalsLine,
)
from forecourt.switch.journal.statements import Statements


class Record(Protocol):
    """A result row, by column name (``sqlite3.Row``, psycopg's ``dict_row``)."""

    def __getitem__(self, key: str, /) -> Any: ...


_SAF_FIELDS = tuple(c.strip() for c in sql.SAF_COLUMNS.split(","))
_GUARD_FIELDS = tuple(c.strip() for c in sql.GUARD_COLUMNS.split(","))


def journal_row(r: Record) -> JournalRow:
    values: dict[str, Any] = {k: r[k] for k in COLUMNS}
    if values["response_raw"] is not None:
        values["response_raw"] = bytes(values["response_raw"])
    return JournalRow(**values)


def _saf_entry(r: Record) -> SafEntry:
    return SafEntry(**{k: r[k] for k in _SAF_FIELDS})


def _guard(r: Record) -> GuardState:
    return guard_state([r[k] for k in _GUARD_FIELDS])


class QueryReader:
    """Every ``JournalReader`` read over ``_rows``; subclasses give ``_rows``."""

    statements: Statements

    def _rows(self, query: str, params: Sequence[object] = ()) -> Sequence[Record]:
        raise NotImplementedError

    def _q(self, query: str) -> str:
        return self.statements.convert(query)

    def view(self, query: str, params: Sequence[object] = ()) -> Sequence[Record]:
        """A read written in SQLite's spelling, for views outside the journal package
        (the web console); the reader is ``query_only``, so it cannot write."""
        return self._rows(self._q(query), params)

    def get(self, txn_id: str) -> JournalRow | None:
        rows = self._rows(self._q(sql.GET_TXN), (txn_id,))
        return journal_row(rows[0]) if rows else None

    def find_by_terminal_key(
        self, mti_class: str, terminal_id: str, stan: str
    ) -> JournalRow | None:
        rows = self._rows(self._q(sql.FIND_BY_TERMINAL_KEY), (terminal_id, stan, mti_class))
        return journal_row(rows[0]) if rows else None

    def list_transactions(
        self, limit: int, terminal: str | None, state: str | None
    ) -> list[JournalRow]:
        where: list[str] = []
        params: list[object] = []
        if terminal is not None:
            where.append("terminal_id = ?")
            params.append(terminal)
        if state is not None:
            where.append("state = ?")
            params.append(state)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        rows = self._rows(
            self._q(f"SELECT * FROM transactions {clause} ORDER BY received_at DESC LIMIT ?"),
            (*params, limit),
        )
        return [journal_row(r) for r in rows]

    def recover(self, node: str | None) -> list[JournalRow]:
        query = sql.RECOVER
        params: tuple[object, ...] = ()
        if node is not None:
            query += " AND node = ?"
            params = (node,)
        rows = self._rows(self._q(query + " ORDER BY received_at"), params)
        return [journal_row(r) for r in rows]

    def events(self, txn_id: str) -> list[Event]:
        rows = self._rows(self._q(sql.EVENTS), (txn_id,))
        return [Event(r["txn_id"], r["at"], r["kind"], r["detail"]) for r in rows]

    def saf_stats(self) -> SafStats:
        # A reversal parked for an answered transaction is not work to do: counted apart.
        horizon = time.time() + PARKED_HORIZON_S
        counts = {r["s"]: int(r["n"]) for r in self._rows(self._q(sql.SAF_COUNTS), (horizon,))}
        oldest = self._rows(self._q(sql.SAF_OLDEST), (horizon,))[0]["m"]
        by_link = {r["link"]: int(r["n"]) for r in self._rows(self._q(sql.SAF_BY_LINK), (horizon,))}
        return SafStats(
            pending=counts.get("pending", 0),
            in_flight=counts.get("in_flight", 0),
            flagged=counts.get("flagged", 0),
            done=counts.get("done", 0),
            oldest_created_at=oldest,
            depth_by_link=by_link,
            parked=counts.get("parked", 0),
        )

    def open_shifts(self) -> list[tuple[str, str]]:
        return [(r["terminal_id"], r["shift_id"]) for r in self._rows(sql.OPEN_SHIFTS)]

    def open_shift_of(self, terminal_id: str) -> str | None:
        """The terminal's open shift, whichever node opened it."""
        rows = self._rows(self._q(sql.OPEN_SHIFT_OF), (terminal_id,))
        return str(rows[0]["shift_id"]) if rows else None

    def saf_entries(self, state: str | None, limit: int) -> list[SafEntry]:
        where = "" if state is None else "WHERE state = ? "
        params = (limit,) if state is None else (state, limit)
        query = f"SELECT {sql.SAF_COLUMNS} FROM saf {where}ORDER BY id LIMIT ?"
        return [_saf_entry(r) for r in self._rows(self._q(query), params)]

    def saf_entries_of(self, txn_ids: Sequence[str]) -> list[SafEntry]:
        """The SAF items under given transaction ids (the ``saf (txn_id)`` index)."""
        if not txn_ids:
            return []
        query = (
            f"SELECT {sql.SAF_COLUMNS} FROM saf "
            f"WHERE txn_id IN ({self.statements.marks(len(txn_ids))}) ORDER BY id"
        )
        return [_saf_entry(r) for r in self._rows(query, tuple(txn_ids))]

    def totals(self, terminal_id: str, shift_id: str) -> ShiftTotals:
        rows = self._rows(self._q(sql.TOTALS), (terminal_id, shift_id) * 2)
        lines = tuple(
            TotalsLine(r["currency"], r["category"], int(r["n"]), int(r["total"]), r["tender"])
            for r in rows
        )
        return ShiftTotals(terminal_id, shift_id, lines)

    def shift(self, terminal_id: str, shift_id: str) -> ShiftRecord | None:
        rows = self._rows(self._q(sql.SHIFT), (terminal_id, shift_id))
        return _shift_record(rows[0]) if rows else None

    def shifts(self, terminal_id: str | None = None, limit: int = 50) -> list[ShiftRecord]:
        """The latest shifts (of one terminal, or all), newest first."""
        where = "" if terminal_id is None else "WHERE terminal_id = ? "
        params = (limit,) if terminal_id is None else (terminal_id, limit)
        rows = self._rows(self._q(sql.SHIFTS.format(where=where)), params)
        return [_shift_record(r) for r in rows]

    def split_group(self, terminal_id: str, group_id: str) -> SplitGroupState | None:
        rows = self._rows(self._q(sql.SPLIT_GROUP), (terminal_id, group_id))
        if not rows:
            return None
        r = rows[0]
        return SplitGroupState(
            terminal_id=r["terminal_id"],
            group_id=r["group_id"],
            total=int(r["total"]),
            claimed=int(r["claimed"]),
            approved=int(r["approved"]),
            tender_rank=int(r["tender_rank"]),
            reversed=bool(r["reversed"]),
            created_at=float(r["created_at"]),
        )

    def split_legs(self, terminal_id: str, group_id: str) -> list[JournalRow]:
        """The purchases of one split sale, oldest first."""
        return [
            journal_row(r) for r in self._rows(self._q(sql.SPLIT_LEGS), (terminal_id, group_id))
        ]

    def guard(self, terminal_id: str) -> GuardState | None:
        rows = self._rows(self._q(sql.GUARD), (terminal_id,))
        return _guard(rows[0]) if rows else None

    def guards_since(self, since: float) -> list[GuardState]:
        """Guards changed at or after ``since`` (0: all), oldest change first."""
        return [_guard(r) for r in self._rows(self._q(sql.GUARDS_SINCE), (since,))]


def _shift_record(r: Any) -> ShiftRecord:
    return ShiftRecord(
        terminal_id=r["terminal_id"],
        shift_id=r["shift_id"],
        opened_at=r["opened_at"],
        closed_at=r["closed_at"],
        totals=json.loads(r["totals"]) if r["totals"] else None,
        in_balance=None if r["in_balance"] is None else bool(r["in_balance"]),
    )
