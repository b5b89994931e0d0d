"""Opening a journal backend from a configuration, a SQLite file path or a DSN."""

from __future__ import annotations

from pathlib import Path

from forecourt.switch.config import SwitchConfig
from forecourt.switch.journal.backend import BatchWriter, JournalBackend
from forecourt.switch.journal.kept_sealed import keep_policy
from forecourt.switch.journal.sqlite import SqliteJournal

__all__ = ["open_backend"]


def open_backend(
    target: SwitchConfig | Path | str, synchronous: str | None = None
) -> JournalBackend:
    """The backend for a configuration, a SQLite file path or a DSN (opens and migrates)."""
    if isinstance(target, SwitchConfig):
        sync = synchronous or target.journal.synchronous
        db = target.database
        backend = (
            open_backend(db, sync) if db is not None else SqliteJournal(target.journal_path, sync)
        )
        if isinstance(backend, BatchWriter):  # [recon] keep_sealed_days
            backend.keep_sealed = keep_policy(
                target.recon.keep_sealed_days, target.business_day.cutover
            )
        return backend
    text = str(target)
    if text.startswith(("postgresql://", "postgres://")):
        from forecourt.switch.journal.postgres import PostgresJournal

        return PostgresJournal(text)
    return SqliteJournal(Path(target), synchronous or "full")
