"""Message templates a terminal sends, in both families.

Each template builds a complete, plausible request from the terminal's
settings and what the session has done so far (the pre-authorisation a
completion settles, the transaction a reversal undoes, the totals a shift close
reports); a script step then overrides single fields.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

import attrs
from forecourt.codecs.family import Family
from forecourt.codecs.fields import OriginalData, OriginalElements
from forecourt.codecs.message import Message
from forecourt.codecs.network import NetworkFunction, network_request
from forecourt.simulators.ic_card_templates import IC_CARD_TEMPLATES, ic_card_request

__all__ = [
    "DEFAULT_TEST_PAN",
    "TEMPLATES",
    "Profile",
    "SentRequest",
    "Shift",
    "TemplateError",
    "TerminalIdentity",
    "build",
]

# The public Visa test card the simulators use when a script or mix names none.
# Test data only: it is never a real card.
DEFAULT_TEST_PAN = "4761739001010010"

TEMPLATES = (
    "purchase",
    "preauth",
    "balance_inquiry",
    "completion",
    "reversal",
    "refund",
    "reconciliation",
    "sign_on",
    "sign_off",
    "echo",
    "key_change",
    *IC_CARD_TEMPLATES,
)


class TemplateError(ValueError):
    """A template cannot be built (e.g. a completion with no pre-authorisation before it)."""


@attrs.frozen
class Profile:
    """Indoor EFT/POS or outdoor payment terminal: what the card acceptor data says."""

    name: str
    business_code: str  # field 26 (1993): 5541 indoor, 5542 outdoor (automated fuel)
    pos_data_code: str  # field 22 (1993), an12
    entry_mode: str  # field 22 (1987), n3


PROFILES: Mapping[str, Profile] = {
    # Chip read, PIN, attended; then unattended outdoor with chip, no PIN.
    "indoor": Profile("indoor", "5541", "C10101C14001", "051"),
    "outdoor": Profile("outdoor", "5542", "C10100U04001", "051"),
}


def _ans8(value: str) -> str:
    return value.ljust(8)


def _ans15(value: str) -> str:
    return value.ljust(15)


@attrs.frozen
class TerminalIdentity:
    """What every request of a terminal carries (41 and 42 space-padded to ans8 / ans15)."""

    terminal_id: str = attrs.field(converter=_ans8)
    merchant_id: str = attrs.field(converter=_ans15)
    family: Family
    pan: str
    expiry: str = "2912"
    currency: str = "978"
    acquirer_id: str | None = None
    amount: int = 1000


@attrs.frozen
class SentRequest:
    """A request this terminal sent and the answer it got, for later references."""

    message: Message
    answer: Message | None = None


@attrs.define
class Shift:
    """Approved debits and reversals since the last reconciliation, for 1520 / 0500."""

    debits: int = 0
    debit_amount: int = 0
    debit_reversals: int = 0
    debit_reversal_amount: int = 0

    def reset(self) -> None:
        self.debits = self.debit_amount = self.debit_reversals = self.debit_reversal_amount = 0


def _now_fields(family: Family, now: float) -> dict[str, str]:
    gm = time.gmtime(now)
    fields = {"7": time.strftime("%m%d%H%M%S", gm)}
    if family == Family.ISO1993:
        fields["12"] = time.strftime("%y%m%d%H%M%S", gm)
    else:
        fields["12"] = time.strftime("%H%M%S", gm)
        fields["13"] = time.strftime("%m%d", gm)
    return fields


def _card_request(
    mti_1993: str, who: TerminalIdentity, profile: Profile, stan: str, now: float
) -> Message:
    family = who.family
    fields = {
        "2": who.pan,
        "3": "000000",
        "4": f"{who.amount:012d}",
        "11": stan,
        "14": who.expiry,
        "41": who.terminal_id,
        "42": who.merchant_id,
        "49": who.currency,
        **_now_fields(family, now),
    }
    if who.acquirer_id:
        fields["32"] = who.acquirer_id
    if family == Family.ISO1993:
        fields["22"] = profile.pos_data_code
        fields["26"] = profile.business_code
        # Function code: 200 original financial request; 101 pre-authorisation,
        # amount estimated (the pump does not know the final amount yet).
        fields["24"] = "200" if mti_1993 == "1200" else "101"
        return Message(mti_1993, fields)
    fields["22"] = profile.entry_mode
    fields["25"] = "00"
    return Message("0" + mti_1993[1:], fields)


def _original_reference(family: Family, original: Message) -> dict[str, str]:
    if family == Family.ISO1993:
        return {"56": OriginalData.of(original.mti, original.fields).encode()}
    return {"90": OriginalElements.of(original.mti, original.fields).encode()}


def build(
    template: str,
    who: TerminalIdentity,
    profile: Profile,
    stan: str,
    *,
    last_preauth: SentRequest | None = None,
    last_financial: SentRequest | None = None,
    shift: Shift | None = None,
    now: float | None = None,
) -> Message:
    """The request `template` with everything filled in; raises TemplateError."""
    t = time.time() if now is None else now
    family = who.family
    if template == "purchase":
        return _card_request("1200", who, profile, stan, t)
    if template == "preauth":
        return _card_request("1100", who, profile, stan, t)
    if template == "balance_inquiry":
        return _balance_inquiry(who, profile, stan, t)
    if template in ("sign_on", "sign_off", "echo", "key_change"):
        message = network_request(family, NetworkFunction(template), stan, who.terminal_id, t)
        return message.with_fields({42: who.merchant_id})
    if template in IC_CARD_TEMPLATES:  # simulators/ic_card_templates.py
        if family != Family.ISO1993:
            raise TemplateError(f"{template} is an IFSF (1993) message")
        return ic_card_request(
            template,
            terminal_id=who.terminal_id,
            merchant_id=who.merchant_id,
            pan=who.pan,
            amount=who.amount,
            currency=who.currency,
            stan=stan,
            now=t,
        )
    if template == "completion":
        return _completion(who, profile, stan, t, last_preauth)
    if template == "reversal":
        return _reversal(who, stan, t, last_financial)
    if template == "refund":
        return _refund(who, stan, t, last_financial)
    if template == "reconciliation":
        return _reconciliation(who, stan, t, shift or Shift())
    raise TemplateError(f"unknown template {template!r}; known: {', '.join(TEMPLATES)}")


def _balance_inquiry(who: TerminalIdentity, profile: Profile, stan: str, now: float) -> Message:
    """What is left on the card (a fleet card before fuelling): 1100 / 0100, code 31xxxx.

    Nothing is to be taken, so the amount is zero; 1993 function code 108 (inquiry).
    """
    updates: dict[int, str | None] = {3: "310000", 4: f"{0:012d}"}
    if who.family == Family.ISO1993:
        updates[24] = "108"
    return _card_request("1100", who, profile, stan, now).with_fields(updates)


def _completion(
    who: TerminalIdentity, profile: Profile, stan: str, now: float, preauth: SentRequest | None
) -> Message:
    """The advice after fuelling: the actual amount, referring to the pre-authorisation."""
    if preauth is None:
        raise TemplateError("a completion needs a pre-authorisation sent before it")
    original = preauth.message
    base = _card_request("1220", who, profile, stan, now)
    fields = dict(base.fields)
    fields["4"] = original.fields.get("4", fields["4"])
    fields.update(_original_reference(who.family, original))
    answer = preauth.answer
    if answer is not None:
        for n in ("37", "38"):
            if n in answer.fields:
                fields[n] = answer.fields[n]
        approved = answer.fields.get("4")
        if approved is not None and answer.fields.get("39") in ("002", "10"):
            fields["4"] = approved  # never complete for more than was approved
    if who.family == Family.ISO1993:
        fields["24"] = "201"  # 202 when a step overrides field 4 with another amount
    return Message(base.mti, fields)


def _reversal(
    who: TerminalIdentity, stan: str, now: float, original: SentRequest | None
) -> Message:
    """A full reversal of the last authorisation or purchase (timeout / cancel / pump fault)."""
    if original is None:
        raise TemplateError("a reversal needs a transaction sent before it")
    message = original.message
    fields = {k: v for k, v in message.fields.items() if k not in ("56", "90", "64", "128")}
    fields.update(_now_fields(who.family, now))
    fields["11"] = stan
    fields.update(_original_reference(who.family, message))
    answer = original.answer
    if answer is not None:
        for n in ("37", "38"):
            if n in answer.fields:
                fields[n] = answer.fields[n]
    if who.family == Family.ISO1993:
        fields["24"] = "400"  # full reversal
        fields["25"] = "4021"  # timeout waiting for the answer
        return Message("1420", fields)
    fields.pop("24", None)
    return Message("0400", fields)


def _refund(who: TerminalIdentity, stan: str, now: float, original: SentRequest | None) -> Message:
    """A refund (processing code 20) of the last purchase, naming it in field 56 / 90.

    It carries the purchase's card, if it had one; a wallet sale's refund carries no
    payment code (the customer shows none): the switch sends it where the sale went.
    """
    if original is None:
        raise TemplateError("a refund needs a purchase sent before it")
    message = original.message
    dropped = ("48", "52", "55", "56", "90", "64", "128")
    fields = {k: v for k, v in message.fields.items() if k not in dropped}
    fields.update(_now_fields(who.family, now))
    fields["3"] = "200000"
    fields["4"] = f"{who.amount:012d}"
    fields["11"] = stan
    fields.update(_original_reference(who.family, message))
    return Message(message.mti, fields)


def _reconciliation(who: TerminalIdentity, stan: str, now: float, shift: Shift) -> Message:
    """Shift close with this session's totals: numbers (76/77) and amounts (88/89)."""
    net = shift.debit_amount - shift.debit_reversal_amount
    fields = {
        "11": stan,
        "41": who.terminal_id,
        "42": who.merchant_id,
        "74": "0" * 10,
        "75": "0" * 10,
        "76": f"{shift.debits:010d}",
        "77": f"{shift.debit_reversals:010d}",
        "86": "0" * 16,
        "87": "0" * 16,
        "88": f"{shift.debit_amount:016d}",
        "89": f"{shift.debit_reversal_amount:016d}",
        "97": ("D" if net >= 0 else "C") + f"{abs(net):016d}",
        **_now_fields(who.family, now),
    }
    if who.family == Family.ISO1993:
        fields["24"] = "500"  # final reconciliation
        fields["49"] = who.currency
        return Message("1520", fields)
    fields.pop("12", None)
    fields.pop("13", None)
    fields["50"] = who.currency
    fields["15"] = time.strftime("%m%d", time.gmtime(now))
    return Message("0500", fields)
