"""The business day: its close at the cut-over, its frozen totals, its late lines
and the host totals exchanged with each ISO 8583 acquirer (docs/reconciliation.md).

Its tables are a journal domain (switch/journal/domains.py): the write operations
are in `ops`, applied by `apply_day` in the journal writer's transaction.
"""

from __future__ import annotations

from .ops import (
    DAY_OPS,
    BookLate,
    ClaimHostTotals,
    CloseDay,
    DayClosed,
    DayOp,
    RecordHostTotals,
    RequestHostTotals,
)
from .store import apply_day

__all__ = [
    "DAY_OPS",
    "BookLate",
    "ClaimHostTotals",
    "CloseDay",
    "DayClosed",
    "DayOp",
    "RecordHostTotals",
    "RequestHostTotals",
    "apply_day",
]
