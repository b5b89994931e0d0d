"""The journal's values: transaction rows, SAF items, shift totals, terminal guards.

These are what the switch core and the backends exchange; they carry no
database handle and no PAN (see ``check_pan_free``). The write operations are in
``writes.py``.
"""

from __future__ import annotations

import enum
import os
import re
import time
from collections.abc import Mapping
from typing import Any

import attrs
from forecourt.switch.log import contains_pan


class TxnState(enum.StrEnum):
    RECEIVED = "received"
    FORWARDED = "forwarded"
    APPROVED = "approved"
    DECLINED = "declined"
    TIMED_OUT = "timed_out"
    REVERSAL_PENDING = "reversal_pending"
    REVERSED = "reversed"
    ANSWERED_LOCALLY = "answered_locally"
    FAILED = "failed"


OPEN_STATES = (TxnState.RECEIVED, TxnState.FORWARDED)

# A pending SAF item due further away than this is a parked reversal: the switch
# holds it for a transaction in flight or answered, and makes it due only if the
# transaction must be reversed (timeout, crash, terminal gone, operator).
PARKED_HORIZON_S = 5 * 365 * 86400.0
# A SAF row that is a reversal (MTI class 4: 1420, 0400) not yet claimed: under an
# approved transaction's own id, its parked reversal (both backends' SQL).
PARKED_REVERSAL_SQL = "state = 'pending' AND substr(mti, 2, 1) = '4'"


class SafState(enum.StrEnum):
    PENDING = "pending"
    IN_FLIGHT = "in_flight"
    DONE = "done"
    FLAGGED = "flagged"


class JournalError(Exception):
    """The journal could not do what was asked (the message never holds card data)."""


class JournalClosed(JournalError):
    """The journal was closed before the write was committed."""


class UnknownTransaction(JournalError):
    """An update named a txn_id the journal does not hold."""


class PanRefused(JournalError):
    """A value looked like a full PAN or track data; the journal never stores one."""


_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_PAIRS = tuple(a + b for a in _CROCKFORD for b in _CROCKFORD)  # 10 bits -> 2 characters
_SHIFTS = tuple(range(120, -1, -10))
_LONG_DIGITS = re.compile(r"[0-9]{12}")


def new_txn_id() -> str:
    """A ULID: 26 characters, time-ordered (48-bit milliseconds, 80 random bits).

    Ids with 12 digits in a row are drawn again, so that a transaction id can
    never be mistaken for a card number by the log masker or the PAN guard.
    """
    while True:
        n = ((int(time.time() * 1000) & 0xFFFFFFFFFFFF) << 80) | int.from_bytes(os.urandom(10))
        # 26 characters of 5 bits (the top two bits of 130 are zero), two at a time
        ulid = "".join([_PAIRS[(n >> shift) & 1023] for shift in _SHIFTS])
        if not _LONG_DIGITS.search(ulid):
            return ulid


def _flags(value: object) -> tuple[str, ...]:
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        return tuple(f for f in value.split(",") if f)
    return tuple(str(v) for v in value)  # type: ignore[attr-defined]


@attrs.frozen
class JournalRow:
    """One terminal request and what became of it (one row of ``transactions``)."""

    txn_id: str
    node: str
    terminal_id: str
    stan: str
    mti_class: str
    request_mti: str
    received_at: float  # UTC epoch seconds
    state: str = TxnState.RECEIVED
    response_mti: str | None = None
    action_code: str | None = None
    amount: int | None = None  # minor units
    approved_amount: int | None = None
    currency: str | None = None  # ISO 4217 numeric
    masked_pan: str | None = None  # first 6 + last 4 only
    processing_code: str | None = None
    route: str | None = None  # acquirer link name
    acquirer_stan: str | None = None
    rrn: str | None = None
    auth_code: str | None = None
    original_txn_id: str | None = None  # reversals and completions
    shift_id: str | None = None
    forwarded_at: float | None = None
    answered_at: float | None = None
    host_ms: float | None = None
    switch_ms: float | None = None
    response_raw: bytes | None = None  # the PAN-free answer we sent, for replay
    flags: tuple[str, ...] = attrs.field(default=(), converter=_flags)
    # field 32 of the request as it went upstream: a later terminal reversal names the
    # original's acquirer in field 56/90 from it
    acquirer_id: str | None = None
    # split tender: the sale's group id (field 48-7 / 62) and the card's tender
    split_group: str | None = None
    tender: str | None = None
    # the cashier signed on at the terminal when the request arrived (None: nobody)
    operator_id: str | None = None


COLUMNS: tuple[str, ...] = tuple(a.name for a in attrs.fields(JournalRow))
UPDATABLE: frozenset[str] = frozenset(COLUMNS) - {"txn_id"}


@attrs.frozen
class Event:
    """One step in a transaction's life (``events`` table)."""

    txn_id: str
    at: float
    kind: str
    detail: str | None = None


@attrs.frozen
class SafEntry:
    """A store-and-forward item as listed (no payload)."""

    id: int
    txn_id: str
    link: str
    mti: str
    attempts: int
    next_attempt_at: float
    state: str
    claimed_by: str | None
    lease_until: float | None
    created_at: float
    last_error: str | None


@attrs.frozen
class SafItem:
    """A claimed SAF item: the clear message to (re)send. ``attempts`` counts this one."""

    id: int
    txn_id: str
    link: str
    mti: str  # the original MTI; send the repeat MTI when attempts > 1
    payload: bytes = attrs.field(repr=False)
    attempts: int
    created_at: float
    last_error: str | None


@attrs.frozen
class SafStats:
    pending: int
    in_flight: int
    flagged: int
    done: int
    oldest_created_at: float | None  # oldest item still to be delivered
    depth_by_link: Mapping[str, int]
    parked: int = 0  # reversals held for answered transactions, not due

    @property
    def depth(self) -> int:
        """Items still to be delivered (pending + in flight)."""
        return self.pending + self.in_flight


@attrs.frozen
class TotalsLine:
    currency: str
    category: str  # debit, credit, reversed, authorised, declined, stand_in (among debits)
    count: int
    amount: int
    tender: str = ""  # fleet, consumer, bank ("" for rows journalled before tenders)


@attrs.frozen
class ShiftTotals:
    """What the switch journalled for one terminal shift (to compare with a 1520/0500)."""

    terminal_id: str
    shift_id: str
    lines: tuple[TotalsLine, ...]

    def get(self, category: str, currency: str | None = None) -> tuple[int, int]:
        """(count, amount) of a category, over one currency or all."""
        rows = [x for x in self.lines if x.category == category]
        if currency is not None:
            rows = [x for x in rows if x.currency == currency]
        return sum(x.count for x in rows), sum(x.amount for x in rows)


@attrs.frozen
class SplitGroupState:
    """One split sale as the journal holds it (``split_groups``): ``claimed`` is what
    approved legs and legs still at their authoriser hold, never above ``total``;
    ``tender_rank`` the highest tender approved so far (fleet 0, consumer 1, bank 2)."""

    terminal_id: str
    group_id: str
    total: int
    claimed: int
    approved: int
    tender_rank: int
    reversed: bool
    created_at: float

    @property
    def due(self) -> int:
        return self.total - self.approved


@attrs.frozen
class ShiftRecord:
    terminal_id: str
    shift_id: str
    opened_at: float
    closed_at: float | None
    totals: Mapping[str, Any] | None
    in_balance: bool | None


@attrs.frozen
class GuardState:
    """A terminal's guard as every node and worker sees it (``terminal_guards``): MAC
    failures counted since the last good MAC or key change, locked after too many,
    signed off. Shared so a terminal locked at one node is locked at all, and after a
    restart."""

    terminal_id: str
    mac_failures: int
    locked: bool
    signed_off: bool
    updated_at: float


# --------------------------------------------------------------------------- the PAN guard

_OUR_IDS = frozenset({"txn_id", "original_txn_id"})  # ULIDs we made (see new_txn_id)
_MASKED_PAN = re.compile(r"^[0-9]{0,6}\*{2,13}[0-9]{0,4}$")


def check_pan_free(column: str, value: object) -> None:
    """Refuse a full PAN or track data in any text going into the journal.

    ``masked_pan`` must look masked (up to 6 digits, stars, up to 4 digits);
    every other text must not hold a Luhn-valid 13-19 digit run, track data, or
    a digit run longer than 19. ``response_raw`` (bytes) cannot be checked this
    way (numeric fields run together in an encoded message): the switch stores
    answers without fields 2, 35, 45, 52, 55 by contract.
    """
    if value is None or isinstance(value, bool | int | float | bytes):
        return
    if column in _OUR_IDS:
        return
    if column == "masked_pan":
        if not isinstance(value, str) or not _MASKED_PAN.match(value):
            raise PanRefused("masked_pan: must be masked (first 6, '*', last 4)")
        return
    text = value if isinstance(value, str) else repr(value)
    if contains_pan(text):
        raise PanRefused(f"{column}: looks like a full PAN or track data; refused")


def check_row(row: JournalRow) -> None:
    for name in COLUMNS:
        check_pan_free(name, getattr(row, name))


def check_changes(changes: Mapping[str, object]) -> None:
    for name, value in changes.items():
        if name not in UPDATABLE:
            raise JournalError(f"update: unknown or read-only column {name!r}")
        check_pan_free(name, value)
