"""Host totals: the reconciliation request a day's totals make for one acquirer.

ISO 8583:1993 (the IFSF dialect): a 1520 acquirer reconciliation advice, function
code 500 (field 24, final reconciliation), the business day in field 28 (date,
reconciliation, YYMMDD). The 1987 dialects: a 0500 acquirer reconciliation
request, the business day in field 15 (date, settlement, MMDD). Both carry the
day's currency in field 50 and the totals in the fields both versions define:

    74 credits, number          86 credits, amount
    75 credits, reversal number 87 credits, reversal amount
    76 debits, number           88 debits, amount
    77 debits, reversal number  89 debits, reversal amount
    97 amount, net reconciliation / settlement: "D" or "C" and 16 digits

Debits are the sales (gross: the reversed ones too), credits the refunds; net is
debits less their reversals less credits plus theirs, "D" when the cardholders
were debited on balance. The host answers 1530 with field 39 500 (reconciled, in
balance) or 501 (out of balance), or 0510 with field 66 (settlement code) 1 (in
balance) or 2 (out of balance); when it is out, it may send its own figures in
the same fields, and they are recorded beside ours.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterable
from typing import Any

import attrs
from forecourt.codecs.family import Family
from forecourt.codecs.message import Message

from .totals import DayLine

__all__ = ["Figures", "HostAnswer", "read_answer", "reconciliation_request"]

_COUNTS = {"74": "credits", "75": "credit_reversals", "76": "debits", "77": "debit_reversals"}
_AMOUNTS = {"86": "credits", "87": "credit_reversals", "88": "debits", "89": "debit_reversals"}


class SeveralCurrencies(Exception):
    """One reconciliation request holds one currency (field 50)."""


@attrs.frozen
class Figures:
    """(count, amount in minor units) of each total, in one currency."""

    currency: str = ""
    credits: tuple[int, int] = (0, 0)
    credit_reversals: tuple[int, int] = (0, 0)
    debits: tuple[int, int] = (0, 0)
    debit_reversals: tuple[int, int] = (0, 0)

    @property
    def net(self) -> int:
        """Debits less their reversals, less credits plus theirs (minor units)."""
        return self.debits[1] - self.debit_reversals[1] - self.credits[1] + self.credit_reversals[1]

    def same_totals(self, other: Figures) -> bool:
        return attrs.evolve(self, currency="") == attrs.evolve(other, currency="")

    @classmethod
    def of_acquirer(cls, lines: Iterable[DayLine], acquirer: str) -> Figures:
        """The figures of `acquirer` from a day's lines (frozen and late added up)."""
        sums: dict[str, list[int]] = {}
        currencies: set[str] = set()
        for line in lines:
            if line.dimension != "acquirer" or line.key != acquirer:
                continue
            if line.count or line.amount:
                currencies.add(line.currency)
            acc = sums.setdefault(line.category, [0, 0])
            acc[0] += line.count
            acc[1] += line.amount
        if len(currencies) > 1:
            raise SeveralCurrencies(
                f"acquirer {acquirer!r} has totals in several currencies ({sorted(currencies)})"
            )

        def get(category: str) -> tuple[int, int]:
            c, a = sums.get(category, [0, 0])
            return c, a

        sale, refund = get("sale"), get("refund")
        sale_rev, refund_rev = get("sale_reversal"), get("refund_reversal")
        return cls(
            currency=next(iter(currencies), ""),
            credits=(refund[0] + refund_rev[0], refund[1] + refund_rev[1]),
            credit_reversals=refund_rev,
            debits=(sale[0] + sale_rev[0], sale[1] + sale_rev[1]),
            debit_reversals=sale_rev,
        )

    @classmethod
    def of_message(cls, message: Message) -> Figures | None:
        """The figures a host sent (74-77, 86-89), or None when it sent none."""
        fields = message.fields
        if not any(k in fields for k in (*_COUNTS, *_AMOUNTS)):
            return None
        values: dict[str, list[int]] = {name: [0, 0] for name in _COUNTS.values()}
        for number, name in _COUNTS.items():
            values[name][0] = _digits(fields.get(number))
        for number, name in _AMOUNTS.items():
            values[name][1] = _digits(fields.get(number))
        return cls(
            currency=fields.get("50", ""),
            **{name: (c, a) for name, (c, a) in values.items()},
        )

    def fields(self) -> dict[int, str]:
        out: dict[int, str] = {}
        for number, name in _COUNTS.items():
            out[int(number)] = f"{getattr(self, name)[0]:010d}"
        for number, name in _AMOUNTS.items():
            out[int(number)] = f"{getattr(self, name)[1]:016d}"
        net = self.net
        out[97] = ("D" if net >= 0 else "C") + f"{abs(net):016d}"
        if self.currency:
            out[50] = self.currency
        return out

    def as_json(self) -> dict[str, Any]:
        return {
            "currency": self.currency,
            "credits": list(self.credits),
            "credit_reversals": list(self.credit_reversals),
            "debits": list(self.debits),
            "debit_reversals": list(self.debit_reversals),
            "net": self.net,
        }


def _digits(value: str | None) -> int:
    return int(value) if value and value.isdigit() else 0


def reconciliation_request(
    figures: Figures, day: dt.date, family: Family, now: float | None = None
) -> Message:
    """The 1520 (1993) or 0500 (1987) of one day; field 11 is the link's to set."""
    at = time.gmtime(time.time() if now is None else now)
    fields: dict[str, str] = {
        "7": time.strftime("%m%d%H%M%S", at),
        "11": "000000",
        **{str(k): v for k, v in figures.fields().items()},
    }
    if family is Family.ISO1993:
        fields["24"] = "500"
        fields["28"] = day.strftime("%y%m%d")
        return Message(mti="1520", fields=fields)
    fields["15"] = day.strftime("%m%d")
    return Message(mti="0500", fields=fields)


@attrs.frozen
class HostAnswer:
    """The host's word: in balance (True), out (False) or neither (None: refused,
    not reconciled); its own figures when it sent them."""

    action_code: str
    in_balance: bool | None
    theirs: Figures | None


def read_answer(answer: Message, family: Family) -> HostAnswer:
    code = answer.fields.get("39", "")
    theirs = Figures.of_message(answer)
    if family is Family.ISO1993:
        verdict = {"500": True, "501": False}.get(code)
    else:
        settlement = answer.fields.get("66")
        verdict = {"1": True, "2": False}.get(settlement or "") if code == "00" else None
    return HostAnswer(code, verdict, theirs)
