"""The grey records' journal write operations: each one database transaction's worth.

They go through `Journal.write` like the ledger's, so the record and the debit it
posts to the card's ledger account are one transaction: never a closed record
without its debit, nor a debit without its record. `switch.grey.apply_grey` runs them.
"""

from __future__ import annotations

import attrs

__all__ = [
    "GREY_OPS",
    "CardFacts",
    "GreyAnswer",
    "GreyCardCheck",
    "GreyCounts",
    "GreyFlagStale",
    "GreyList",
    "GreyLock",
    "GreyOp",
    "GreyRecord",
    "GreyResult",
    "GreyUnlock",
]


@attrs.frozen
class CardFacts:
    """What a pump's message says about one card transaction (a lock or a result)."""

    card_ref: str
    atc: int  # the card's transaction counter, 0..65535
    amount: int  # minor units
    currency: str
    terminal_id: str
    pump: str
    nozzle: str
    local_time: str  # field 12, YYMMDDhhmmss at the pump
    tac: str  # hex, 8 digits
    node: str
    at: float


@attrs.frozen
class GreyLock:
    """Grey-lock notification: record the card's interrupted-until-closed debit.
    Result: `GreyAnswer` (recorded, already, unknown_card)."""

    facts: CardFacts


@attrs.frozen
class GreyResult:
    """Notify transaction result: close the record with the final amount and debit the
    card's account. A result whose lock never arrived is recorded closed at once (an
    advice is never refused: the fuel is in the tank). Result: `GreyAnswer`
    (completed, already, unknown_card)."""

    facts: CardFacts


@attrs.frozen
class GreyUnlock:
    """Unlock request: close the card's open record (the one of `atc` when given) from
    any terminal or node, and debit what it says. Result: `GreyAnswer` (complete,
    clear, unknown_card, no_grey_record)."""

    card_ref: str
    atc: int | None
    terminal_id: str
    node: str
    at: float


@attrs.frozen
class GreyCardCheck:
    """IC card check: the card's status and its account's balance. Result:
    `GreyAnswer` (active, blocked, lost, unknown_card) with `available`/`currency`."""

    card_ref: str


@attrs.frozen
class GreyFlagStale:
    """Flag open records recorded before `older_than` for manual handling, at most
    `limit` of them. Result: the number flagged."""

    older_than: float
    at: float
    limit: int = 500


@attrs.frozen
class GreyList:
    """Records by state (None: all), newest first. Result: list of `GreyRecord`."""

    state: str | None = None
    limit: int = 100


@attrs.frozen
class GreyCounts:
    """How many records each state has. Result: dict state -> count."""


@attrs.frozen
class GreyRecord:
    """One row of `grey_records`, as read."""

    card_ref: str
    atc: int
    masked_pan: str
    account_id: str
    amount: int
    currency: str
    terminal_id: str
    pump: str
    nozzle: str
    local_time: str
    tac: str
    node: str
    recorded_at: float
    state: str
    closed_by: str | None
    final_amount: int | None
    debited: int
    closed_at: float | None
    closing_terminal: str | None
    closing_node: str | None
    closing_tac: str | None
    flagged_at: float | None
    flags: str

    @property
    def open(self) -> bool:
        """Not closed yet (a flagged record is open and overdue)."""
        return self.state in ("open", "flagged")


@attrs.frozen
class GreyAnswer:
    """What a grey operation decided. `new`: this call changed the record (a repeat
    answers the same with new False); `available` after it, for a card check."""

    code: str
    record: GreyRecord | None = None
    new: bool = False
    available: int = 0
    currency: str = ""
    masked_pan: str = ""


GreyOp = GreyLock | GreyResult | GreyUnlock | GreyCardCheck | GreyFlagStale | GreyList | GreyCounts
GREY_OPS: tuple[type, ...] = (
    GreyLock,
    GreyResult,
    GreyUnlock,
    GreyCardCheck,
    GreyFlagStale,
    GreyList,
    GreyCounts,
)
