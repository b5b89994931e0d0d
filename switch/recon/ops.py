"""Reconciliation's journal write operations (applied by `apply_recon`, one database
transaction each): import a file, match a day, act on an item."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import attrs
from forecourt.switch.config_recon import ReconParty

__all__ = ["RECON_OPS", "ActOnItem", "AdviceSent", "ImportFile", "MatchDay", "ReconOp"]


@attrs.frozen
class ImportFile:
    """Read `path` as `party`'s layout and keep its lines; all or nothing. A file seen
    before (same SHA-256) changes nothing; a line held already (same identity, from
    another file) is not added twice. Result: `ImportResult`."""

    party: ReconParty
    path: Path
    sha256: str
    at: float
    # told the bytes read so far, now and then (the CLI's progress bar)
    progress: Callable[[int], None] | None = attrs.field(default=None, eq=False, repr=False)


@attrs.frozen
class MatchDay:
    """Match `party`'s lines of business day `day` ([start, end) UTC) against the
    journal; the day's results are replaced, items are only ever added. Result:
    `RunResult`."""

    party: ReconParty
    day: str  # YYYY-MM-DD
    start: float
    end: float
    at: float


@attrs.frozen
class AdviceSent:
    """The advice an `advice` action queued (or re-queued): recorded under its
    transaction, once (`recon_advices.txn_id` is the primary key)."""

    txn_id: str
    link: str
    mti: str
    how: str  # built (from the sealed reversal) | resent (the flagged advice, as a repeat)


@attrs.frozen
class ActOnItem:
    """Close item `item_id` with `action` (one of model.ACTIONS), audited with the
    operator and the time; refused when the item is closed already, or when
    `advice` names a transaction an advice was sent for already. Result: None."""

    item_id: int
    action: str
    operator: str
    at: float
    reason: str = ""
    detail: str = ""
    advice: AdviceSent | None = None


ReconOp = ImportFile | MatchDay | ActOnItem
RECON_OPS: tuple[type, ...] = (ImportFile, MatchDay, ActOnItem)
