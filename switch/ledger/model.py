"""The fleet and consumer ledger's values: accounts, cards, limits, what a request says.

Money is in minor units of the account's currency, volume in millilitres. A card is
known by its reference, a keyed hash of the PAN (`card_reference`): the database
never holds a PAN, only the reference and the masked PAN an operator reads.
"""

from __future__ import annotations

import calendar
import hashlib
import hmac
import time

import attrs

__all__ = [
    "ACCOUNT_KINDS",
    "AUTH_LEVELS",
    "BINDINGS",
    "CARD_STATUSES",
    "Decision",
    "Limits",
    "Prompted",
    "Refused",
    "SaleFacts",
    "Settled",
    "card_reference",
    "day_start",
    "month_start",
]

ACCOUNT_KINDS = ("fleet", "consumer")
CARD_STATUSES = ("active", "blocked", "lost")
BINDINGS = ("vehicle", "driver", "none")  # a fleet card's binding; consumer cards: none
# How the cardholder was verified (docs/accounts.md): limits are set per level.
AUTH_LEVELS = ("pin", "signature", "offline")
# The books a posting moves money between (double entry: one debit, one credit).
BOOKS = ("available", "held", "settled", "funding", "adjustment")
POSTING_KINDS = ("hold", "capture", "release", "reversal", "topup", "adjustment")


def card_reference(key: bytes, pan: str) -> str:
    """The card's key in the ledger: HMAC-SHA256 of the PAN under a key derived from
    the LMK, so a copy of the database gives no PAN (an unkeyed hash of a 16-digit
    PAN of a known range is brute-forced in minutes)."""
    return hmac.new(key, pan.encode("ascii"), hashlib.sha256).hexdigest()


def day_start(at: float) -> float:
    """UTC midnight before `at`: daily limits run from it."""
    return at - at % 86400.0


def month_start(at: float) -> float:
    """The first of `at`'s UTC month: monthly limits run from it."""
    t = time.gmtime(at)
    return float(calendar.timegm((t.tm_year, t.tm_mon, 1, 0, 0, 0, 0, 0, 0)))


@attrs.frozen
class Limits:
    """A card's limits at one verification level; None: no limit of that kind."""

    per_txn_amount: int | None = None
    daily_amount: int | None = None
    monthly_amount: int | None = None
    per_txn_volume: int | None = None  # millilitres
    daily_volume: int | None = None
    monthly_volume: int | None = None

    def as_row(self) -> tuple[int | None, ...]:
        return attrs.astuple(self)


@attrs.frozen
class Prompted:
    """What the pump prompted for (field 48 sub-element 8), recorded with the sale."""

    driver: str | None = None
    vehicle: str | None = None
    odometer: int | None = None


@attrs.frozen
class SaleFacts:
    """What a request says about the sale, read from its fields by the authoriser."""

    level: str = "signature"
    products: tuple[str, ...] = ()  # product codes of field 63 (empty: not stated)
    volume_ml: int = 0
    prompted: Prompted = Prompted()


@attrs.frozen
class Decision:
    """The ledger's answer to an authorisation or inquiry.

    `code` is the ledger's name of the outcome (authorisers/ledger/codes.py spells it
    for the dialect); `approved` what was taken or held; `available` the balance
    after it; `flags` what an operator should see (odometer backwards).
    """

    code: str
    requested: int = 0
    approved: int = 0
    available: int = 0
    currency: str = ""
    flags: tuple[str, ...] = ()

    @property
    def approved_something(self) -> bool:
        return self.code in ("approved", "partial")


@attrs.frozen
class Settled:
    """The answer to a completion or reversal: how much moved, and whether it was new."""

    code: str  # approved | already | original_not_found
    captured: int = 0
    restored: int = 0
    flags: tuple[str, ...] = ()


@attrs.frozen
class Refused:
    """An operator's change not made, and why (one line, naming the thing)."""

    reason: str
