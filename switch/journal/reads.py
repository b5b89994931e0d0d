"""The journal's reads on the trio side: each in a worker thread on a pooled reader.

Reads never wait behind the writer (SQLite WAL, PostgreSQL's pool). ``Journal``
inherits these; they are here so the writer side stays one concept.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import trio
from forecourt.switch.journal.backend import JournalBackend, JournalReader
from forecourt.switch.journal.model import (
    Event,
    GuardState,
    JournalRow,
    SafEntry,
    SafStats,
    ShiftRecord,
    ShiftTotals,
    SplitGroupState,
)
from forecourt.switch.journal.reader import QueryReader

_R = TypeVar("_R")


class JournalReads:
    """The read half of ``Journal`` (a reader pool of ``readers`` connections)."""

    backend: JournalBackend

    def __init__(self, readers: int) -> None:
        self._readers: list[JournalReader] = []
        self._read_limiter = trio.CapacityLimiter(readers)

    async def _read(self, fn: Callable[[JournalReader], _R]) -> _R:
        async with self._read_limiter:
            reader = self._readers.pop() if self._readers else None
            try:
                if reader is None:
                    reader = await trio.to_thread.run_sync(self.backend.open_reader)
                return await trio.to_thread.run_sync(fn, reader, abandon_on_cancel=False)
            finally:
                if reader is not None:
                    self._readers.append(reader)

    async def get(self, txn_id: str) -> JournalRow | None:
        return await self._read(lambda r: r.get(txn_id))

    async def get_many(self, txn_ids: Sequence[str], chunk: int = 5000) -> list[JournalRow]:
        """The rows found for `txn_ids`, a chunk per reader thread hop rather than one
        hop each (recovery looks up every parked reversal: 540,000 after 15 min at 600/s)."""
        found: list[JournalRow] = []
        for start in range(0, len(txn_ids), chunk):
            part = txn_ids[start : start + chunk]
            rows = await self._read(lambda r: [r.get(t) for t in part])  # noqa: B023
            found += [row for row in rows if row is not None]
        return found

    async def find_by_terminal_key(
        self, mti_class: str, terminal_id: str, stan: str
    ) -> JournalRow | None:
        """The latest transaction with this matching key (for retransmissions)."""
        return await self._read(lambda r: r.find_by_terminal_key(mti_class, terminal_id, stan))

    async def recover(self, node: str | None = None) -> list[JournalRow]:
        """Transactions left received/forwarded (by ``node``, or any): crash recovery."""
        return await self._read(lambda r: r.recover(node))

    async def events(self, txn_id: str) -> list[Event]:
        return await self._read(lambda r: r.events(txn_id))

    async def saf_stats(self) -> SafStats:
        return await self._read(lambda r: r.saf_stats())

    async def saf_entries(self, state: str | None = None, limit: int = 100) -> list[SafEntry]:
        return await self._read(lambda r: r.saf_entries(state, limit))

    async def saf_entries_of(self, txn_ids: Sequence[str], chunk: int = 500) -> list[SafEntry]:
        """The SAF items queued under these transaction ids (`saf_txn` index), any state."""
        found: list[SafEntry] = []
        for start in range(0, len(txn_ids), chunk):
            part = txn_ids[start : start + chunk]
            found += await self._read(lambda r: r.saf_entries_of(part))  # noqa: B023
        return found

    async def totals(self, terminal_id: str, shift_id: str) -> ShiftTotals:
        return await self._read(lambda r: r.totals(terminal_id, shift_id))

    async def open_shifts(self) -> list[tuple[str, str]]:
        """(terminal id, shift id) of every shift not closed yet."""
        return await self._read(lambda r: r.open_shifts())

    async def shift(self, terminal_id: str, shift_id: str) -> ShiftRecord | None:
        return await self._read(lambda r: r.shift(terminal_id, shift_id))

    async def open_shift(self, terminal_id: str) -> str | None:
        """The terminal's open shift in the journal, whichever node opened it."""
        return await self._read(lambda r: r.open_shift_of(terminal_id))

    async def guard(self, terminal_id: str) -> GuardState | None:
        """The terminal's guard (MAC failures, lock, signed off), or None if never set."""
        return await self._read(lambda r: r.guard(terminal_id))

    async def guards_since(self, since: float) -> list[GuardState]:
        """Guards changed at or after ``since`` (0: all): how a node catches up."""
        return await self._read(lambda r: r.guards_since(since))

    async def split_group(self, terminal_id: str, group_id: str) -> SplitGroupState | None:
        """A split sale's group row (what is claimed and approved of its total)."""
        return await self._read(lambda r: r.split_group(terminal_id, group_id))

    async def split_legs(self, terminal_id: str, group_id: str) -> list[JournalRow]:
        """The purchases journalled in one split sale, oldest first."""
        return await self._read(lambda r: r.split_legs(terminal_id, group_id))

    async def view(self, query: str, params: Sequence[object] = ()) -> list[dict[str, Any]]:
        """A read of a domain's own tables (switch/journal/domains.py), written in
        SQLite's spelling; rows as dicts. The reader is query-only."""

        def rows(r: JournalReader) -> list[dict[str, Any]]:
            assert isinstance(r, QueryReader)
            # sqlite3.Row and psycopg's dict rows are both mappings; Record says less
            return [dict(row) for row in r.view(query, params)]

        return await self._read(rows)

    async def rows(self, query: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        """A read in SQLite's spelling for a domain outside the journal package (the
        business day's tables), rows as tuples on either backend."""

        def read(reader: JournalReader) -> list[tuple[Any, ...]]:
            found = reader.view(query, params)
            return [tuple(r.values()) if isinstance(r, dict) else tuple(r) for r in found]

        return await self._read(read)

    def _close_readers(self) -> None:
        while self._readers:
            self._readers.pop().close()

    # Last in the class: a method named `list` would shadow the type in later annotations.
    async def list(
        self, limit: int = 50, terminal: str | None = None, state: str | None = None
    ) -> list[JournalRow]:
        """Latest transactions first, optionally of one terminal and/or state."""
        return await self._read(lambda r: r.list_transactions(limit, terminal, state))
