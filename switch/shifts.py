"""Shifts and the shift-close reconciliation (1520/0500).

A shift begins when the terminal signs on with no shift open and ends at its
shift close; every transaction in between carries the shift id, so the switch
can total a shift from its own journal and compare with what the terminal counted.
"""

from __future__ import annotations

import time
from typing import Any

import attrs
from forecourt.codecs.message import Message
from forecourt.switch.journal import ShiftTotals


class ShiftBook:
    """The one owner of "which shift is open" per terminal, and of parked reversals.

    An approved purchase or pre-authorisation keeps its reversal parked in SAF
    (the card data it needs is sealed there) until the terminal reverses or
    completes it, or its shift closes: so a terminal that went away, an operator
    (`forecourt journal reverse`) or the pre-authorisation window can still reverse it.
    """

    def __init__(self) -> None:
        self._open: dict[str, str] = {}
        self._parked: dict[str, tuple[int, str]] = {}  # txn id -> (SAF item id, terminal id)
        # txn id -> held since; kept in time order while stamps arrive in order, so
        # expiry reads only the front (a full scan and re-sort when a clock step breaks it)
        self._parked_at: dict[str, float] = {}
        self._parked_at_sorted = True
        self._last_parked_at = float("-inf")
        self._by_terminal: dict[str, set[str]] = {}  # terminal id -> txn ids parked

    def current(self, terminal_id: str) -> str | None:
        return self._open.get(terminal_id)

    def open(self, terminal_id: str, at: float | None = None) -> str:
        stamp = time.gmtime(time.time() if at is None else at)
        shift_id = time.strftime("%Y%m%d-%H%M%S", stamp)
        self._open[terminal_id] = shift_id
        return shift_id

    def restore(self, terminal_id: str, shift_id: str) -> None:
        self._open[terminal_id] = shift_id

    def closed(self, terminal_id: str) -> list[int]:
        """Close the shift; the parked reversals it no longer needs (to cancel)."""
        self._open.pop(terminal_id, None)
        txns = self._by_terminal.pop(terminal_id, set())
        ids = []
        for t in txns:
            self._parked_at.pop(t, None)
            entry = self._parked.pop(t, None)
            if entry is not None:
                ids.append(entry[0])
        return ids

    def parked(
        self,
        terminal_id: str,
        txn_id: str,
        saf_id: int,
        *,
        held_since: float | None = None,
        expires: bool = True,
    ) -> None:
        """Remember a parked reversal. One that `expires` (an approved purchase) is
        erased by SAF housekeeping after the hold window; a pre-authorisation's is due
        at the end of its completion window instead, so it does not expire here."""
        previous = self._parked.get(txn_id)
        if previous is not None and previous[1] != terminal_id:
            self._by_terminal.get(previous[1], set()).discard(txn_id)
        self._parked[txn_id] = (saf_id, terminal_id)
        self._parked_at.pop(txn_id, None)
        if expires:
            at = time.time() if held_since is None else held_since
            if at < self._last_parked_at:
                self._parked_at_sorted = False
            self._last_parked_at = max(self._last_parked_at, at)
            self._parked_at[txn_id] = at
        self._by_terminal.setdefault(terminal_id, set()).add(txn_id)

    def expire(self, held_before: float) -> int:
        """Forget parked reversals the journal erased (held since before `held_before`).

        Runs on the event loop once a minute with up to a hold window of entries
        (540,000 at 600/s), so it reads from the oldest end and stops at the first
        one still held."""
        if not self._parked_at_sorted:
            ordered = sorted(self._parked_at.items(), key=lambda item: item[1])
            self._parked_at = dict(ordered)
            self._parked_at_sorted = True
        old = []
        for txn_id, at in self._parked_at.items():
            if at >= held_before:
                break
            old.append(txn_id)
        for txn_id in old:
            self.completed(txn_id)
        return len(old)

    def parked_id(self, txn_id: str) -> int | None:
        entry = self._parked.get(txn_id)
        return None if entry is None else entry[0]

    def parked_count(self) -> int:
        return len(self._parked)

    def completed(self, txn_id: str) -> int | None:
        """Reversed, completed or reversing: the parked reversal to cancel or use, if any."""
        entry = self._parked.pop(txn_id, None)
        self._parked_at.pop(txn_id, None)
        if entry is None:
            return None
        saf_id, terminal_id = entry
        txns = self._by_terminal.get(terminal_id)
        if txns is not None:
            txns.discard(txn_id)
            if not txns:
                del self._by_terminal[terminal_id]
        return saf_id


def _count(message: Message, field: str) -> int:
    value = message.fields.get(field)
    return int(value) if value and value.isdigit() else 0


@attrs.frozen
class Reconciliation:
    terminal_debits: tuple[int, int]
    terminal_credits: tuple[int, int]
    switch_debits: tuple[int, int]
    switch_credits: tuple[int, int]

    @property
    def in_balance(self) -> bool:
        return (
            self.terminal_debits == self.switch_debits
            and self.terminal_credits == self.switch_credits
        )

    def as_journal(self) -> dict[str, Any]:
        def diff(a: tuple[int, int], b: tuple[int, int]) -> list[int]:
            return [a[0] - b[0], a[1] - b[1]]

        return {
            "terminal": {
                "debits": list(self.terminal_debits),
                "credits": list(self.terminal_credits),
            },
            "switch": {"debits": list(self.switch_debits), "credits": list(self.switch_credits)},
            "difference": {
                "debits": diff(self.terminal_debits, self.switch_debits),
                "credits": diff(self.terminal_credits, self.switch_credits),
            },
        }


def reconcile(request: Message, totals: ShiftTotals) -> Reconciliation:
    """Compare the terminal's counts (74-77, 86-89: net of reversals) with the journal's."""
    debits = (
        _count(request, "76") - _count(request, "77"),
        _count(request, "88") - _count(request, "89"),
    )
    credits = (
        _count(request, "74") - _count(request, "75"),
        _count(request, "86") - _count(request, "87"),
    )
    return Reconciliation(
        terminal_debits=debits,
        terminal_credits=credits,
        switch_debits=totals.get("debit"),
        switch_credits=totals.get("credit"),
    )
