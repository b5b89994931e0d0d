"""Shifts and the shift-close reconciliation (1520/0500).

A shift begins when the terminal signs on with no shift open and ends at its
shift close; every transaction in between carries the shift id, so the switch
can total a shift from its own journal and compare with what the terminal counted,
and break its totals down by tender (fleet, consumer, bank card) for the split sales.
Open shifts are the journal's (one per terminal, whichever node opened it): a
transaction row written without a shift takes the terminal's open one in the same
statement, so every node of a cluster agrees without a cache.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import attrs
from forecourt.codecs.message import Message
from forecourt.switch.journal import ShiftTotals


def new_shift_id(at: float | None = None) -> str:
    """A new shift id: UTC time to the millisecond. To the second, a terminal that
    closed its shift and signed on again within the same second reopened the shift
    it had just closed, and its next close counted both shifts' transactions."""
    now = time.time() if at is None else at
    millis = int(now * 1000) % 1000
    return f"{time.strftime('%Y%m%d-%H%M%S', time.gmtime(now))}.{millis:03d}"


def _count(message: Message, field: str) -> int:
    value = message.fields.get(field)
    return int(value) if value and value.isdigit() else 0


def by_tender(totals: ShiftTotals) -> dict[str, dict[str, list[int]]]:
    """The switch's totals per tender (fleet, consumer, bank), then category:
    {tender: {category: [count, amount]}}, over every currency. Rows journalled
    before tenders existed are under "unknown"."""
    out: dict[str, dict[str, list[int]]] = {}
    for line in totals.lines:
        counts = out.setdefault(line.tender or "unknown", {}).setdefault(line.category, [0, 0])
        counts[0] += line.count
        counts[1] += line.amount
    return out


@attrs.frozen
class Reconciliation:
    terminal_debits: tuple[int, int]
    terminal_credits: tuple[int, int]
    switch_debits: tuple[int, int]
    switch_credits: tuple[int, int]
    tenders: Mapping[str, Mapping[str, list[int]]] = attrs.field(factory=dict)
    # {cashier: {category: [count, amount]}} (switch/terminals/cashier_totals.py)
    operators: Mapping[str, Mapping[str, list[int]]] = attrs.field(factory=dict)

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
            "by_tender": {t: dict(c) for t, c in self.tenders.items()},
            "by_operator": {o: dict(c) for o, c in self.operators.items()},
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
        tenders=by_tender(totals),
    )
