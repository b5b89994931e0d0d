"""Reconciliation with the parties that moved money: acquirers' settlement files,
wallet providers' bill files and the switch's own ledger, matched against the
journal; every difference an error item an operator closes (docs/reconciliation.md).

Its operations are journal write operations (`ops`), applied in the journal's
database by `apply_recon` (one row of switch/journal/domains.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from .matching import match_day
from .model import (
    ACTIONS,
    ImportResult,
    ItemRefused,
    MalformedFile,
    MatchClass,
    RunResult,
    SettlementLine,
)
from .ops import RECON_OPS, ActOnItem, AdviceSent, ImportFile, MatchDay, ReconOp
from .store import Cursor, Sql, act, import_file

__all__ = [
    "ACTIONS",
    "RECON_OPS",
    "ActOnItem",
    "AdviceSent",
    "ImportFile",
    "ImportResult",
    "ItemRefused",
    "MalformedFile",
    "MatchClass",
    "MatchDay",
    "ReconOp",
    "RunResult",
    "SettlementLine",
    "apply_recon",
]


def apply_recon(
    op: ReconOp,
    run: Callable[[str, Sequence[object]], Cursor],
    convert: Callable[[str], str],
    lock: str,
) -> object:
    """Run one reconciliation operation in the caller's transaction; its result."""
    sql = Sql(run, convert)
    match op:
        case ImportFile():
            return import_file(sql, op)
        case MatchDay():
            return match_day(sql, op)
        case ActOnItem():
            act(sql, op)
            return None
