"""The acquirer simulator's own totals: what it approved, per business day, and its
truthful answer to a reconciliation request (1520 / 0500).

The host counts, at the moment it answers, each financial request and advice it
approved (x200, x220: debits, or credits for processing code 20) and each reversal
it applied to an original (x420 / 0400: the original's amount), once per request
(a repeat counts nothing more). Its business day is its own clock against its own
cut-over (`[totals]`), as a real acquirer's is. A reconciliation request names the
day (1993: field 28, YYMMDD; 1987: field 15, MMDD); the host compares the figures
in 74-77 and 86-89 with its own: 500 / field 66 = 1 when they agree, 501 / field
66 = 2 and its own figures in the same fields when they do not.

Rule actions make it disagree on purpose: `drop_from_totals` (approve, but
leave the request out of the totals), `double_in_totals` (approve, count it
twice) and `lose` (approve, and leave it out of the totals and the settlement file).
"""

from __future__ import annotations

import datetime as dt
import re
import time
from collections import OrderedDict
from collections.abc import Callable

import attrs
from forecourt.codecs.family import Family
from forecourt.codecs.message import Message

from ._toml import Table
from .rules import Decision, HostLogic

__all__ = ["TOTALS_ACTIONS", "HostTotals", "TotalsDay", "parse_totals_day"]

TOTALS_ACTIONS = ("drop_from_totals", "double_in_totals", "lose")
_NAMES = ("credits", "credit_reversals", "debits", "debit_reversals")
_COUNT_FIELDS = ("74", "75", "76", "77")
_AMOUNT_FIELDS = ("86", "87", "88", "89")
_SEEN_KEPT = 200_000
_TIME = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
_OFFSET = re.compile(r"^([+-])(0\d|1[0-4]):([0-5]\d)$")


@attrs.frozen
class TotalsDay:
    """The host's business day: a cut-over (minutes after local midnight) and a fixed
    offset from UTC (minutes east)."""

    cutover_minutes: int = 0
    utc_offset_minutes: int = 0

    def of(self, at: float) -> dt.date:
        local = dt.datetime.fromtimestamp(at, dt.UTC) + dt.timedelta(
            minutes=self.utc_offset_minutes - self.cutover_minutes
        )
        return local.date()


def parse_totals_day(t: Table) -> TotalsDay:
    """`[totals] cutover = "HH:MM"`, `utc_offset = "+HH:MM"` (both optional)."""
    when = _TIME.match(t.text("cutover", "00:00"))
    if when is None:
        raise t.error("cutover", 'must be a local time of day, "HH:MM"')
    off = _OFFSET.match(t.text("utc_offset", "+00:00"))
    if off is None:
        raise t.error("utc_offset", 'must be "+HH:MM" or "-HH:MM"')
    t.done()
    minutes = int(off.group(2)) * 60 + int(off.group(3))
    return TotalsDay(
        int(when.group(1)) * 60 + int(when.group(2)),
        minutes if off.group(1) == "+" else -minutes,
    )


def _amount(message: Message) -> int:
    value = message.fields.get("4", "")
    return int(value) if value.isdigit() else 0


def _is_credit(message: Message) -> bool:
    return message.fields.get("3", "00")[:2] == "20"


class HostTotals:
    """Per day: {total name: [count, amount]}."""

    def __init__(
        self,
        logic: HostLogic,
        day: TotalsDay | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._logic = logic
        self._day = day or TotalsDay()
        self._clock = clock
        self.days: dict[dt.date, dict[str, list[int]]] = {}
        self._seen: OrderedDict[tuple[str, ...], None] = OrderedDict()
        self._rules = any(r.action in TOTALS_ACTIONS for r in logic.rules)
        self._approved = logic.code("approved")
        self._reconciled = logic.code("reconciled")
        self.reconciliations = 0

    def settle(
        self, request: Message, decision: Decision, reversals_before: int
    ) -> tuple[Decision, dict[str, str]]:
        """Count what the host took with this answer; for a reconciliation request,
        the answer's code and the fields it adds."""
        cls = request.mti[1]
        if cls == "5" and decision.code == self._reconciled:
            return self._reconcile(request, decision)
        if cls == "2" and decision.code == self._approved:
            self._count(request, "credits" if _is_credit(request) else "debits", _amount(request))
        elif cls == "4" and self._logic.reversals_applied > reversals_before:
            original = self._logic.find_original(request)
            amount = original.amount if original is not None else _amount(request)
            name = "credit_reversals" if _is_credit(request) else "debit_reversals"
            self._count(request, name, amount)
        return decision, {}

    def figures(self, day: dt.date) -> dict[str, list[int]]:
        return self.days.get(day, {name: [0, 0] for name in _NAMES})

    def _count(self, request: Message, name: str, amount: int) -> None:
        f = request.fields
        key = (request.mti[1], f.get("41", ""), f.get("11", ""), f.get("4", ""), f.get("32", ""))
        if key in self._seen:
            return  # a repeat (x201, x221, x421) of one the host has counted
        self._seen[key] = None
        while len(self._seen) > _SEEN_KEPT:
            self._seen.popitem(last=False)
        times = 1
        if self._rules:
            rule = self._logic.first_match(request)
            if rule is not None and rule.action in ("drop_from_totals", "lose"):
                times = 0
            elif rule is not None and rule.action == "double_in_totals":
                times = 2
        day = self.days.setdefault(self._day.of(self._clock()), {n: [0, 0] for n in _NAMES})
        day[name][0] += times
        day[name][1] += times * amount

    def _named_day(self, request: Message) -> dt.date:
        today = self._day.of(self._clock())
        f = request.fields
        if self._logic.family == Family.ISO1993 and (f.get("28") or "").isdigit():
            return dt.datetime.strptime(f["28"], "%y%m%d").date()
        mmdd = f.get("15") or ""
        if len(mmdd) == 4 and mmdd.isdigit():
            # the year that puts the day nearest today (a day closed just after new year)
            options = []
            for year in (today.year - 1, today.year, today.year + 1):
                try:
                    options.append(dt.date(year, int(mmdd[:2]), int(mmdd[2:])))
                except ValueError:
                    continue
            if options:
                return min(options, key=lambda d: abs((d - today).days))
        return today

    def _reconcile(self, request: Message, decision: Decision) -> tuple[Decision, dict[str, str]]:
        self.reconciliations += 1
        ours = self.figures(self._named_day(request))
        f = request.fields
        theirs = {
            name: [int(f.get(c) or 0), int(f.get(a) or 0)]
            for name, c, a in zip(_NAMES, _COUNT_FIELDS, _AMOUNT_FIELDS, strict=True)
        }
        agree = all(theirs[name] == ours[name] for name in _NAMES)
        extra: dict[str, str] = {}
        if self._logic.family != Family.ISO1993:
            extra["66"] = "1" if agree else "2"
        if agree:
            return decision, extra
        for name, c, a in zip(_NAMES, _COUNT_FIELDS, _AMOUNT_FIELDS, strict=True):
            extra[c] = f"{ours[name][0]:010d}"
            extra[a] = f"{ours[name][1]:016d}"
        net = (
            ours["debits"][1]
            - ours["debit_reversals"][1]
            - ours["credits"][1]
            + ours["credit_reversals"][1]
        )
        extra["97"] = ("D" if net >= 0 else "C") + f"{abs(net):016d}"
        if self._logic.family == Family.ISO1993:
            decision = attrs.evolve(decision, code=self._logic.code("out_of_balance"))
        return decision, extra
