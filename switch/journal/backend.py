"""What a journal backend must do; the trio side (``Journal``) drives it from threads.

A backend has exactly one writer (``run_batch``, called by one task at a time)
and any number of readers, each used by one thread at a time. SQLite is the
embedded default; PostgreSQL (psycopg 3) implements the same two protocols.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from forecourt.switch.journal.kept_sealed import KeepSealed
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
from forecourt.switch.journal.writes import WriteOp

# Per write: the list of results of its operations, or the exception that undid it.
WriteOutcome = list[object] | Exception


class JournalReader(Protocol):
    def get(self, txn_id: str) -> JournalRow | None: ...
    def find_by_terminal_key(
        self, mti_class: str, terminal_id: str, stan: str
    ) -> JournalRow | None: ...
    def list_transactions(
        self, limit: int, terminal: str | None, state: str | None
    ) -> list[JournalRow]: ...
    def recover(self, node: str | None) -> list[JournalRow]: ...
    def events(self, txn_id: str) -> list[Event]: ...
    def saf_stats(self) -> SafStats: ...
    def saf_entries(self, state: str | None, limit: int) -> list[SafEntry]: ...
    def saf_entries_of(self, txn_ids: Sequence[str]) -> list[SafEntry]: ...
    def totals(self, terminal_id: str, shift_id: str) -> ShiftTotals: ...
    def shift(self, terminal_id: str, shift_id: str) -> ShiftRecord | None: ...
    def open_shifts(self) -> list[tuple[str, str]]: ...
    def open_shift_of(self, terminal_id: str) -> str | None: ...
    def guard(self, terminal_id: str) -> GuardState | None: ...
    def guards_since(self, since: float) -> list[GuardState]: ...
    def split_group(self, terminal_id: str, group_id: str) -> SplitGroupState | None: ...
    def split_legs(self, terminal_id: str, group_id: str) -> list[JournalRow]: ...
    def view(self, query: str, params: Sequence[object] = ()) -> Sequence[Any]: ...
    def close(self) -> None: ...


class JournalBackend(Protocol):
    @property
    def commits(self) -> int:
        """Transactions committed by the writer so far (group commit makes this small)."""
        ...

    def schema_version(self) -> int: ...

    def run_batch(self, writes: Sequence[Sequence[WriteOp]]) -> list[WriteOutcome]:
        """Apply many writes in ONE database transaction and commit it.

        Each write is all-or-nothing on its own (a savepoint), so one bad write
        fails alone; if the commit itself fails, this raises and nothing of the
        batch is durable.
        """
        ...

    def open_reader(self) -> JournalReader: ...
    def close(self) -> None: ...


class BatchWriter:
    """What both backends' writers keep: the commits so far, the schema version they
    migrated to, and ``before_commit`` (tests fail a COMMIT through it)."""

    def __init__(self) -> None:
        self._commits = 0
        self._version = 0
        self.before_commit: Callable[[], None] | None = None
        # [recon] keep_sealed_days: ending parked reversals keep their sealed payload
        self.keep_sealed: KeepSealed | None = None

    @property
    def commits(self) -> int:
        return self._commits

    def schema_version(self) -> int:
        return self._version

    def _commit_with(self, execute: Callable[[str], object]) -> None:
        if self.before_commit is not None:
            self.before_commit()
        execute("COMMIT")
