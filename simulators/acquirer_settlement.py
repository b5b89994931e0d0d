"""The acquirer simulator's settlement file: what it settled, for reconciliation.

Every approved financial request (class 2: a purchase, a refund, a completion) is a
settlement by the RRN the host answered in field 37, unless an approved reversal
later named it (by field 56/90's STAN, or its RRN): a reversed sale is not settled.
A request its `lose` rule matched is approved and never settled (the host lost it);
an advice of it, with the RRN it was answered, settles it.
The file is CSV in the layout of the `bank` party of conf/forecourt.toml
(docs/reconciliation.md); the PAN is written masked.
"""

from __future__ import annotations

import csv
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import attrs
from forecourt.codecs.message import Message

from .rules import original_stan
from .wire import masked

__all__ = ["SETTLEMENT_COLUMNS", "SettlementBook"]

SETTLEMENT_COLUMNS = ("rrn", "amount", "currency", "settled_at", "type", "pan")


@attrs.define
class _Settled:
    rrn: str
    amount: int
    currency: str
    at: float
    type: str
    pan: str
    reversed: bool = False


class SettlementBook:
    """Settlements by (terminal, STAN) and by RRN; `approved` and `reversed` are the
    host's codes for an approval and an accepted reversal."""

    def __init__(
        self, approved: str, reversed: str, lost: Callable[[Message], bool] | None = None
    ) -> None:
        self._approved = approved
        self._reversed = reversed
        self._lost = lost  # approved and never settled (the `lose` rule)
        self._by_stan: dict[tuple[str, str], _Settled] = {}
        self._by_rrn: dict[str, _Settled] = {}

    def note(self, request: Message, answer: Mapping[str, str]) -> None:
        """Told every answer the host builds (acquirer_answers.AnswerBuilder)."""
        code = answer.get("39")
        if code not in (self._approved, self._reversed):
            return
        fields = request.fields
        terminal = fields.get("41", "")
        cls = request.mti[1]
        if cls == "2" and answer.get("37") and fields.get("4", "").isdigit():
            rrn = answer["37"]
            if rrn in self._by_rrn:  # a repeat of the same advice settles once
                return
            if self._lost is not None and self._lost(request):
                return
            kind = "refund" if fields.get("3", "").startswith("20") else "sale"
            entry = _Settled(
                rrn, int(fields["4"]), fields.get("49", "978"), time.time(), kind,
                masked(fields.get("2")) or "",
            )  # fmt: skip
            self._by_rrn[rrn] = entry
            if fields.get("11"):
                self._by_stan[(terminal, fields["11"])] = entry
        elif cls == "4":
            stan = original_stan(request)
            original = self._by_stan.get((terminal, stan)) if stan else None
            if original is None and fields.get("37"):
                original = self._by_rrn.get(fields["37"])
            if original is not None:
                original.reversed = True

    def write(self, path: Path) -> int:
        """Write the file (0600: it is the tester's); the number of lines."""
        rows = [e for e in self._by_rrn.values() if not e.reversed]
        with open(path, "w", newline="", encoding="ascii", opener=_private) as fh:
            out = csv.writer(fh, lineterminator="\n")
            out.writerow(SETTLEMENT_COLUMNS)
            for e in rows:
                when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(e.at))
                out.writerow((e.rrn, e.amount, e.currency, when, e.type, e.pan))
        return len(rows)


def _private(path: str, flags: int) -> int:
    return os.open(path, flags, 0o600)
