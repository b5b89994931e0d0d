"""The acquirer simulator's decisions: rules, the first that matches wins.

Pure logic, no sockets: `HostLogic.decide(message)` says what the host answers
(action code) and how (now, later, twice, never, by closing the connection). It
keeps no balances: fleet and consumer accounts are the switch's own ledger
(docs/accounts.md). It remembers approved originals, so a reversal or completion
is applied once and counted; a balance inquiry (processing code 31) has no account
to read here and is answered 114 / 52 (no account), or by a decline rule's code.
"""

from __future__ import annotations

import random
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence

import attrs
from forecourt.codecs.action_codes import Outcome, code_for
from forecourt.codecs.family import Family
from forecourt.codecs.message import Message

__all__ = [
    "ACTIONS",
    "CODE_NAMES",
    "Decision",
    "Delay",
    "HostLogic",
    "Original",
    "Rule",
    "RuleError",
    "is_balance_inquiry",
    "named_code",
    "resolve_code",
]

# drop_from_totals / double_in_totals: approve, and leave the request out of the
# host's totals or count it twice there (simulators/acquirer_totals.py); lose:
# approve, and leave it out of the totals and the settlement file both (the host's
# back office lost it: an advice of it settles it)
ACTIONS = (
    "approve",
    "decline",
    "delay",
    "drop",
    "twice",
    "late",
    "close",
    "drop_from_totals",
    "double_in_totals",
    "lose",
)

# Extra names a rule's `code` may use besides the Outcome names ("approved",
# "insufficient_funds", ...): precise declines and the reconciliation answer.
_EXTRA_CODES: Mapping[str, tuple[str, str]] = {
    "expired_card": ("101", "54"),
    "reconciled": ("500", "00"),
    "out_of_balance": ("501", "00"),
    "no_account": ("114", "52"),
    "incorrect_pin": ("117", "55"),
}
CODE_NAMES: tuple[str, ...] = (*(o.value for o in Outcome), *_EXTRA_CODES)

_ORIGINALS_KEPT = 100_000  # originals remembered for reversals and completions


class RuleError(ValueError):
    """A rule in the configuration is not acceptable; names the item."""


def named_code(name: str, family: Family) -> str | None:
    """The code an outcome name stands for in `family`, or None for an unknown name."""
    extra = _EXTRA_CODES.get(name)
    if extra is not None:
        return extra[0] if family == Family.ISO1993 else extra[1]
    try:
        return code_for(Outcome(name), family)
    except ValueError:
        return None


def resolve_code(code: str, family: Family) -> str:
    """A named code ("insufficient_funds") or a literal one ("116"), checked for `family`."""
    named = named_code(code, family)
    if named is not None:
        return named
    width = 3 if family == Family.ISO1993 else 2
    if len(code) != width or not code.isalnum():
        raise RuleError(f"action code {code!r} is not a {family} code of {width} characters")
    return code


@attrs.frozen
class Delay:
    """A fixed delay (low == high) or one drawn uniformly from [low, high]."""

    low_s: float
    high_s: float

    def pick(self, rng: random.Random) -> float:
        if self.low_s == self.high_s:
            return self.low_s
        return rng.uniform(self.low_s, self.high_s)


def _is_authorisation(mti: str) -> bool:
    """x100 / x200 requests (and their repeats): what rules apply to by default."""
    return mti[1] in "12" and mti[2] == "0"


@attrs.frozen
class Rule:
    """One rule: every given criterion must hold; the first matching rule decides.

    Criteria: PAN prefixes, an amount range in minor units (inclusive), MTIs and
    processing codes (field 3, prefix match: "00" is every goods-and-services
    code). A rule that names no MTI applies to authorisation and financial
    requests only (x100, x200), so a catch-all decline does not also refuse the
    switch's reversals and completions; name 1420 or 1220 to act on those.
    """

    name: str
    action: str
    pan_prefixes: tuple[str, ...] = ()
    amount_min: int | None = None
    amount_max: int | None = None
    mtis: tuple[str, ...] = ()
    processing_codes: tuple[str, ...] = ()
    code: str | None = None
    delay: Delay | None = None
    pin: str | None = attrs.field(default=None, repr=False)  # the card's PIN (test only)

    def matches(
        self, mti: str, pan: str | None, amount: int | None, processing: str | None
    ) -> bool:
        if self.mtis:
            if mti not in self.mtis:
                return False
        elif not _is_authorisation(mti):
            return False
        if self.pan_prefixes and (pan is None or not pan.startswith(self.pan_prefixes)):
            return False
        if self.amount_min is not None and (amount is None or amount < self.amount_min):
            return False
        if self.amount_max is not None and (amount is None or amount > self.amount_max):
            return False
        return not self.processing_codes or (
            processing is not None and processing.startswith(self.processing_codes)
        )


@attrs.frozen
class Decision:
    """What to answer and how.

    delivery: "answer" (after `delay_s`), "twice" (two identical answers),
    "late" (after `delay_s`, meant to exceed the switch's timeout), "drop"
    (never), "close" (close the connection instead).
    """

    delivery: str
    code: str | None = None
    delay_s: float = 0.0
    rule: str | None = None
    approval_code: str | None = None


def _amount(message: Message) -> int | None:
    value = message.fields.get("4")
    if value is None or not value.isdigit():
        return None
    return int(value)


def is_balance_inquiry(message: Message) -> bool:
    """An authorisation request (1100 / 0100, or a repeat) with processing code 31xxxx."""
    mti = message.mti
    processing = message.fields.get("3")
    return mti[1] == "1" and mti[2] == "0" and processing is not None and processing[:2] == "31"


def original_stan(message: Message) -> str | None:
    """The original's STAN from field 56 (1993) or 90 (1987): both start MTI(4) STAN(6)."""
    data = message.fields.get("56") or message.fields.get("90")
    if data is None or len(data) < 10:
        return None
    return data[4:10]


@attrs.define
class Original:
    """An approved authorisation remembered for its reversal or completion."""

    amount: int
    reversed: bool = False
    completed: bool = False


class HostLogic:
    """Decides every answer of one simulated host; remembers the originals."""

    def __init__(
        self,
        family: Family,
        rules: Sequence[Rule],
        seed: int | None = None,
        pin_holds: Callable[[Message, str], bool] | None = None,
    ) -> None:
        self.family = family
        self._pin_holds = pin_holds
        self.rules = tuple(rules)
        for rule in self.rules:
            if rule.action not in ACTIONS:
                raise RuleError(f"rule {rule.name!r}: unknown action {rule.action!r}")
            if rule.code is not None:
                resolve_code(rule.code, family)
        self._rng = random.Random(seed)
        self._approval = seed or 0
        self._originals: OrderedDict[tuple[str, str], Original] = OrderedDict()
        self.reversals_applied = 0
        self.completions_applied = 0
        self.balance_inquiries = 0

    def code(self, name: str) -> str:
        return resolve_code(name, self.family)

    def _next_approval_code(self) -> str:
        self._approval = (self._approval + 1) % 1_000_000
        return f"{self._approval:06d}"

    def first_match(self, message: Message) -> Rule | None:
        mti = message.mti
        pan = message.fields.get("2")
        amount = _amount(message)
        processing = message.fields.get("3")
        for rule in self.rules:
            if rule.matches(mti, pan, amount, processing):
                return rule
        return None

    def decide(self, message: Message) -> Decision:
        """The decision for one decoded request (any class)."""
        rule = self.first_match(message)
        mti = message.mti
        if rule is not None and rule.action in ("drop", "close"):
            return Decision(rule.action, rule=rule.name)
        if rule is not None and rule.pin is not None and _is_authorisation(mti):
            holds = self._pin_holds is not None and self._pin_holds(message, rule.pin)
            if not holds:  # wrong, missing or unreadable PIN block: nothing is taken
                return Decision("answer", self.code("incorrect_pin"), rule=rule.name)
        cls = mti[1]
        declining = rule is not None and rule.action == "decline"
        if declining and not _is_authorisation(mti):
            # A rule that names 1420 / 1220 / 1804 to refuse it: nothing is applied.
            decision = Decision("answer", self.code("declined"))
        elif cls == "8":
            decision = Decision("answer", self.code("network_accepted"))
        elif cls == "5":
            decision = Decision("answer", self.code("reconciled"))
        elif cls == "4":
            self._reverse(message)
            decision = Decision("answer", self.code("reversal_accepted"))
        elif is_balance_inquiry(message):
            decision = self._balance_inquiry(rule)
        elif mti[2] == "2":
            self._complete(message)
            decision = Decision("answer", self.code("approved"))
        else:
            decision = self._authorise(message, rule)
        if rule is None:
            return decision
        if rule.code is not None:
            decision = attrs.evolve(decision, code=resolve_code(rule.code, self.family))
        delivery = {"twice": "twice", "late": "late"}.get(rule.action, "answer")
        delay = rule.delay.pick(self._rng) if rule.delay is not None else 0.0
        return attrs.evolve(decision, delivery=delivery, delay_s=delay, rule=rule.name)

    # -- authorisations -------------------------------------------------------------

    def _balance_inquiry(self, rule: Rule | None) -> Decision:
        """No account here to read: 114 / 52 (no account), or a decline rule's code.
        No original is remembered (a reversal of it gives nothing back)."""
        self.balance_inquiries += 1
        if rule is not None and rule.action == "decline":
            return Decision("answer", self.code("declined"))
        return Decision("answer", self.code("no_account"))

    def _authorise(self, message: Message, rule: Rule | None) -> Decision:
        action = rule.action if rule is not None else "approve"
        if action == "decline":
            return Decision("answer", self.code("declined"))
        amount = _amount(message)
        if amount is not None:
            self._remember(message, Original(amount))
        return Decision("answer", self.code("approved"), approval_code=self._next_approval_code())

    def _remember(self, message: Message, original: Original) -> None:
        terminal = message.fields.get("41", "")
        stan = message.fields.get("11")
        originals = self._originals
        if stan is not None:
            originals[(terminal, "stan:" + stan)] = original
        rrn = message.fields.get("37")
        if rrn:
            originals[(terminal, "rrn:" + rrn)] = original
        while len(originals) > _ORIGINALS_KEPT:
            originals.popitem(last=False)

    def remember_reference(self, message: Message, answer_fields: Mapping[str, str]) -> None:
        """Index the original also by the RRN and approval code the answer carried."""
        terminal = message.fields.get("41", "")
        stan = message.fields.get("11")
        original = self._originals.get((terminal, "stan:" + stan)) if stan else None
        if original is None:
            return
        for tag, field in (("rrn:", "37"), ("auth:", "38")):
            value = answer_fields.get(field)
            if value:
                self._originals[(terminal, tag + value)] = original

    def find_original(self, message: Message) -> Original | None:
        """By field 56/90 STAN, then RRN (37), then approval code (38), per terminal."""
        terminal = message.fields.get("41", "")
        stan = original_stan(message)
        candidates = []
        if stan is not None:
            candidates.append("stan:" + stan)
        for tag, field in (("rrn:", "37"), ("auth:", "38")):
            value = message.fields.get(field)
            if value:
                candidates.append(tag + value)
        for candidate in candidates:
            original = self._originals.get((terminal, candidate))
            if original is not None:
                return original
        return None

    # -- advices and reversals ---------------------------------------------------------

    def _complete(self, message: Message) -> None:
        """A completion settles its pre-authorisation at the actual amount (field 4), once."""
        actual = _amount(message)
        original = self.find_original(message)
        if original is None or actual is None or original.completed or original.reversed:
            return
        original.completed = True
        original.amount = actual
        self.completions_applied += 1
        self._remember(message, original)  # a reversal of the completion finds it too

    def _reverse(self, message: Message) -> None:
        """A reversal is applied to its original once; a repeat changes nothing."""
        original = self.find_original(message)
        if original is None or original.reversed:
            return
        original.reversed = True
        self.reversals_applied += 1
