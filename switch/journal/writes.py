"""The journal's write operations: what one ``Journal.write`` applies, all or nothing.

Each is a plain value; the backends turn it into statements (``apply.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs
from forecourt.switch.batch_records import AddBatchAdvice, CloseBatch
from forecourt.switch.day.ops import DayOp
from forecourt.switch.grey.ops import GreyOp
from forecourt.switch.journal.model import Event, JournalRow
from forecourt.switch.ledger.ops import LedgerOp
from forecourt.switch.params.ops import ParamsOp
from forecourt.switch.recon.ops import ReconOp
from forecourt.switch.status_records import RecordStatusQuery
from forecourt.switch.terminals.ops import TerminalOp


@attrs.frozen
class InsertTransaction:
    row: JournalRow


@attrs.frozen
class UpdateTransaction:
    txn_id: str
    changes: Mapping[str, object]


@attrs.frozen
class AddEvent:
    event: Event


@attrs.frozen
class EnqueueSaf:
    txn_id: str
    link: str
    mti: str
    sealed_payload: bytes = attrs.field(repr=False)  # AES-GCM sealed, see sealing.py
    created_at: float
    next_attempt_at: float


@attrs.frozen
class ClaimSaf:
    node: str
    limit: int
    lease_s: float
    now: float
    link: str | None = None


@attrs.frozen
class CompleteSaf:
    item_id: int


@attrs.frozen
class RetrySaf:
    item_id: int
    error: str
    next_attempt_at: float


@attrs.frozen
class FlagSaf:
    item_id: int
    error: str | None = None


@attrs.frozen
class OpenShift:
    """Open a shift, only when the terminal has none open (a unique index on the
    open shifts settles two nodes racing). Result: True when this op opened it."""

    terminal_id: str
    shift_id: str
    at: float


@attrs.frozen
class CloseShift:
    terminal_id: str
    shift_id: str
    at: float
    totals: Mapping[str, Any]
    in_balance: bool


@attrs.frozen
class TakeOverStale:
    """Another node's in-flight transactions, left ``forwarded`` since before
    ``forwarded_before``, become ``reversal_pending`` and their parked reversals due.

    One conditional UPDATE decides which node takes a row, so two survivors never
    both take it. Result: ``[(txn_id, node), ...]`` of the rows taken.
    """

    node: str  # the node taking over (its own rows are left to its own recovery)
    forwarded_before: float
    now: float


@attrs.frozen
class ExpireParked:
    """Housekeeping: parked reversals held since before ``held_before`` are erased
    (the transaction was answered long ago and can no longer be reversed from here),
    and delivered items older than ``done_before`` are deleted, and so are sealed
    payloads kept for reconciliation past their ``erase_at`` (``[recon]
    keep_sealed_days``: kept, not erased, when a parked reversal ends here).
    Result: (erased, deleted, kept payloads erased).

    At most ``limit`` of each per op: a whole hold window (540,000 rows at 600/s) in one
    transaction would hold the journal writer, and every live write behind it, for the
    length of the scan. The caller repeats while a count comes back equal to ``limit``.
    """

    held_before: float
    done_before: float
    now: float
    limit: int = 1000


@attrs.frozen
class CancelParked:
    """The terminal reversed or completed an approved transaction: its parked
    reversal (a reversal in SAF under the transaction's own id, not yet claimed) is
    not needed any more. Whichever node parked it: the journal, not a node's memory,
    knows. The caller checks that the transaction is still approved (a reversal made
    due since, by a timeout or a lost answer, must go). Result: rows cancelled.
    """

    txn_id: str
    reason: str


@attrs.frozen
class CancelShiftParked:
    """A shift closed: the parked reversals of its approved transactions are not
    needed any more. Result: rows cancelled."""

    terminal_id: str
    shift_id: str


@attrs.frozen
class RecordMacFailure:
    """A request failed its MAC: one more failure, counted in the database (an atomic
    increment, so two nodes counting at once never lose one); the terminal is locked
    once ``lock_after`` are counted. Result: the ``GuardState`` after it."""

    terminal_id: str
    lock_after: int
    at: float


@attrs.frozen
class ClearMacFailures:
    """A good MAC: failures back to 0, a lock stays. Result: the ``GuardState``."""

    terminal_id: str
    at: float


@attrs.frozen
class UnlockTerminal:
    """A key change: failures back to 0 and the lock lifted. Result: the ``GuardState``."""

    terminal_id: str
    at: float


@attrs.frozen
class SetSignedOn:
    """Sign-on (True) or sign-off (False) as every node must see it. Result: the
    ``GuardState``."""

    terminal_id: str
    signed_on: bool
    at: float


@attrs.frozen
class ClaimSplitLeg:
    """A split leg takes its amount out of what its sale still owes, before it goes to
    an authoriser: one conditional upsert, so two nodes racing for the last of a sale
    cannot both take it. Refused (result None) when the group's total differs, the
    group was reversed, a later tender was already approved (``rank`` below the
    group's) or the claim would pass the total. Result: (claimed, approved) after it."""

    terminal_id: str
    group_id: str
    total: int
    amount: int
    rank: int
    at: float


@attrs.frozen
class SettleSplitLeg:
    """A leg's answer (or reversal) moves the group: ``claimed`` and ``approved`` by
    the deltas, the tender rank up to ``rank`` when given."""

    terminal_id: str
    group_id: str
    claimed_delta: int
    approved_delta: int
    rank: int | None = None


@attrs.frozen
class ReverseSplitGroup:
    """The whole sale was reversed: nothing is claimed and no further leg is taken."""

    terminal_id: str
    group_id: str


@attrs.frozen
class DueParked:
    """An approved transaction's parked reversal is made due now (a whole split sale
    reversed). Result: rows made due (0: none parked, e.g. after the shift closed)."""

    txn_id: str
    reason: str
    at: float


SplitOp = ClaimSplitLeg | SettleSplitLeg | ReverseSplitGroup | DueParked


@attrs.frozen
class RetryFlaggedSaf:
    """An operator sends a flagged item again: pending and due at ``at``. Its attempts
    are kept, so the resend is a repeat (1421, not 1420). Fails unless it is flagged."""

    item_id: int
    operator: str
    at: float


@attrs.frozen
class AbandonSaf:
    """An operator gives up on a pending or flagged item: done, payload erased, and
    ``last_error`` says who abandoned it (SafState has no "abandoned"). Fails on an
    item in flight or already done."""

    item_id: int
    operator: str
    at: float


@attrs.frozen
class AddOperator:
    """A console operator (docs/console.md); ``password_hash`` is argon2id, never a
    password. Fails when the name exists."""

    name: str
    role: str
    password_hash: str = attrs.field(repr=False)
    at: float


@attrs.frozen
class AuditConsoleAction:
    """One line of the console's audit trail: who did what, to what, when."""

    at: float
    operator: str
    action: str
    target: str = ""
    detail: str = ""


ConsoleOp = RetryFlaggedSaf | AbandonSaf | AddOperator | AuditConsoleAction

GuardOp = RecordMacFailure | ClearMacFailures | UnlockTerminal | SetSignedOn

WriteOp = (
    InsertTransaction
    | UpdateTransaction
    | AddEvent
    | EnqueueSaf
    | ClaimSaf
    | CompleteSaf
    | RetrySaf
    | FlagSaf
    | OpenShift
    | CloseShift
    | TakeOverStale
    | ExpireParked
    | CancelParked
    | CancelShiftParked
    | RecordMacFailure
    | ClearMacFailures
    | UnlockTerminal
    | SetSignedOn
    | ClaimSplitLeg
    | SettleSplitLeg
    | ReverseSplitGroup
    | DueParked
    | LedgerOp  # the fleet and consumer ledger's (switch/ledger/ops.py)
    | ParamsOp  # parameter sets' (switch/params/ops.py)
    | GreyOp  # IC fuel cards' grey records (switch/grey/ops.py)
    | ConsoleOp
    | TerminalOp  # a terminal's cashier, registration, devices (switch/terminals/ops.py)
    | AddBatchAdvice  # batch upload (switch/batch_records.py)
    | CloseBatch
    | RecordStatusQuery  # status query (switch/status_records.py)
    | DayOp  # the business day's (switch/day/ops.py)
    | ReconOp  # reconciliation's (switch/recon/ops.py)
)
