"""The journal: every request, answer and state, the SAF queue and shift totals.

``async with open_journal(config, saf_key=...) as journal:`` — see docs/journal.md.
"""

from __future__ import annotations

from forecourt.switch.journal.backend import JournalBackend, JournalReader
from forecourt.switch.journal.core import Journal, open_backend, open_journal
from forecourt.switch.journal.model import (
    OPEN_STATES,
    PARKED_HORIZON_S,
    AddEvent,
    ClaimSaf,
    CloseShift,
    CompleteSaf,
    EnqueueSaf,
    Event,
    FlagSaf,
    InsertTransaction,
    JournalClosed,
    JournalError,
    JournalRow,
    OpenShift,
    PanRefused,
    RetrySaf,
    SafEntry,
    SafItem,
    SafState,
    SafStats,
    ShiftRecord,
    ShiftTotals,
    TakeOverStale,
    TotalsLine,
    TxnState,
    UnknownTransaction,
    UpdateTransaction,
    WriteOp,
    new_txn_id,
)
from forecourt.switch.journal.sealing import SafSealer
from forecourt.switch.journal.sqlite import LATEST_VERSION, MIGRATIONS, SqliteJournal

__all__ = [
    "LATEST_VERSION",
    "MIGRATIONS",
    "OPEN_STATES",
    "PARKED_HORIZON_S",
    "AddEvent",
    "ClaimSaf",
    "CloseShift",
    "CompleteSaf",
    "EnqueueSaf",
    "Event",
    "FlagSaf",
    "InsertTransaction",
    "Journal",
    "JournalBackend",
    "JournalClosed",
    "JournalError",
    "JournalReader",
    "JournalRow",
    "OpenShift",
    "PanRefused",
    "RetrySaf",
    "SafEntry",
    "SafItem",
    "SafSealer",
    "SafState",
    "SafStats",
    "ShiftRecord",
    "ShiftTotals",
    "SqliteJournal",
    "TakeOverStale",
    "TotalsLine",
    "TxnState",
    "UnknownTransaction",
    "UpdateTransaction",
    "WriteOp",
    "new_txn_id",
    "open_backend",
    "open_journal",
]
