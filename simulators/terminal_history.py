"""What a simulated terminal remembers of its own requests, as a real one does.

The last request (a retransmission repeats it), the last pre-authorisation and the
last financial request with their answers (what a completion, a reversal or a
refund refers to), and the shift's totals of approved debits and reversals (what a
1520 / 0500 reconciliation reports), split sales' legs included. Kept from case to
case of a script; fed by every request sent and every answer received.
"""

from __future__ import annotations

import attrs
from forecourt.codecs.action_codes import is_approved
from forecourt.codecs.family import Family
from forecourt.codecs.message import Message
from forecourt.codecs.mti import response_mti

from .rules import is_balance_inquiry
from .split_steps import SplitLegs
from .templates import SentRequest, Shift

__all__ = ["TerminalHistory"]


class TerminalHistory:
    """The references and shift totals of one simulated terminal."""

    def __init__(self, family: Family) -> None:
        self.family = family
        self.shift = Shift()
        self.last: SentRequest | None = None
        self.last_preauth: SentRequest | None = None
        self.last_financial: SentRequest | None = None
        self.split_legs = SplitLegs()

    def sent(self, message: Message) -> None:
        """A request went: it is the last one, and perhaps what later ones refer to."""
        sent = SentRequest(message)
        self.last = sent
        cls = message.mti[1]
        if is_balance_inquiry(message):
            return  # takes nothing: no completion or reversal refers to it
        if cls == "1" and message.mti[2] == "0":
            self.last_preauth = sent
        refund = (message.fields.get("3") or "").startswith("20")
        if cls in "12" and message.mti[2] in "02" and not refund:
            self.last_financial = sent  # what a reversal or a refund refers to

    def answered(self, message: Message) -> None:
        """References for completions and reversals, shift totals."""
        code = message.fields.get("39", "")
        for sent in (self.last, self.last_preauth, self.last_financial):
            if (
                sent is not None
                and sent.answer is None
                and sent.message.fields.get("11") == message.fields.get("11")
                and response_mti(sent.message.mti) == message.mti
            ):
                self._replace(sent, attrs.evolve(sent, answer=message))
        if not code or not is_approved(code, self.family):
            return
        amount = message.fields.get("4")
        value = int(amount) if amount and amount.isdigit() else 0
        stan = message.fields.get("11")
        if message.mti[1:3] in ("21", "23"):  # 1210 purchase, 1230 completion
            self.shift.debits += 1
            self.shift.debit_amount += value
            self.split_legs.approved_leg(stan, value)
        elif message.mti[1] == "4":
            legs = self.split_legs.reversed_sale(stan)  # a whole split sale: every leg
            self.shift.debit_reversals += 1 if legs is None else len(legs)
            self.shift.debit_reversal_amount += value if legs is None else sum(legs)
        elif message.mti[1] == "5":
            self.shift.reset()

    def _replace(self, old: SentRequest, new: SentRequest) -> None:
        if self.last is old:
            self.last = new
        if self.last_preauth is old:
            self.last_preauth = new
        if self.last_financial is old:
            self.last_financial = new
