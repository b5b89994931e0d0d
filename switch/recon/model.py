"""Reconciliation's values: a settlement line, the classes a line ends in, the errors.

A line is what one party says it settled; the switch's side is the journal. Money is
in minor units, times are UTC epoch seconds, and nothing here holds a full PAN (a
file's PAN column is masked as it is read).
"""

from __future__ import annotations

import enum

import attrs

__all__ = [
    "ACTIONS",
    "ImportResult",
    "ItemRefused",
    "MalformedFile",
    "MatchClass",
    "RunResult",
    "SettlementLine",
]


class MatchClass(enum.StrEnum):
    """Where a line (or a journal row without a line) ends: exactly one of these."""

    MATCHED = "matched"
    PARTY_ONLY = "party_only"  # the party settled what the switch never approved
    SWITCH_ONLY = "switch_only"  # the switch approved what the party never settled
    AMOUNT_DIFFERS = "amount_differs"
    DUPLICATE = "duplicate"  # the party settled the same reference again
    REVERSED_SETTLED = "reversed_settled"  # the switch reversed it, the party settled it


# what an operator can do with an item; each one closes it, once
ACTIONS = ("reverse", "advice", "adjust", "write_off", "resolve")


class MalformedFile(Exception):
    """A file line that cannot be read: the whole file is refused (nothing imported)."""

    def __init__(self, line_no: int, reason: str) -> None:
        self.line_no = line_no
        self.reason = reason
        super().__init__(f"line {line_no}: {reason}")


class ItemRefused(Exception):
    """An action the item does not allow (resolved already, no such item, ...)."""


@attrs.frozen
class SettlementLine:
    """One line of a party's file as read (never the raw text)."""

    line_no: int
    line_id: str  # the line's identity: hash of its text and its occurrence in the file
    reference: str
    amount: int  # minor units, never negative: `type` says which way it went
    currency: str
    at: float
    type: str  # sale | refund | reversal
    masked_pan: str | None = None


@attrs.frozen
class ImportResult:
    party: str
    sha256: str
    lines: int  # lines in the file
    new_lines: int  # lines not already held (0 when the file was imported before)
    already: bool  # the same file (by SHA-256) was imported before


@attrs.frozen
class RunResult:
    party: str
    day: str
    counts: dict[str, int]  # class -> lines (switch_only: journal rows)
    new_items: int
