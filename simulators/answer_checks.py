"""Whether an answer meets a script's expectation: MTI, action code, fields, balance, MAC.

Kept apart from the terminal's state so each check is a plain function of the
answer, the expectation and the keys the terminal holds; the first miss raises
`StepFailed` with the reason the certification report shows (never a PAN,
track or PIN block: those fields are reported as present, not shown).
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs
from forecourt.codecs.amounts import AMOUNT_DUE, AVAILABLE_BALANCE, decode_field54
from forecourt.codecs.dialect import mac_input
from forecourt.codecs.errors import DecodeError
from forecourt.codecs.message import Message
from forecourt.keys.mac import PreparedMac

from .field48_steps import check_field48
from .steps import Expectation

__all__ = ["Answer", "StepFailed", "check_answer", "check_answer_mac"]

# Fields whose values a failure reason never shows.
_SECRET_FIELDS = ("2", "35", "45", "52", "55")


class StepFailed(Exception):
    """A step's expectation did not hold; the message is the reason shown to the user."""


@attrs.frozen
class Answer:
    """An answer as decoded, with the bytes its MAC was computed over."""

    message: Message
    raw: bytes


def check_answer(
    answer: Answer,
    e: Expectation,
    wanted_mti: str | None,
    taks: Sequence[PreparedMac],
) -> None:
    """Raise StepFailed at the first way `answer` misses `e`; `taks`: current TAK first."""
    message = answer.message
    fields = message.fields
    if wanted_mti is not None and message.mti != wanted_mti:
        raise StepFailed(f"answer MTI {message.mti}, expected {wanted_mti}")
    code = fields.get("39")
    if e.action_codes and code not in e.action_codes:
        raise StepFailed(f"action code {code}, expected {' or '.join(e.action_codes)}")
    for number, value in e.fields.items():
        got = fields.get(number)
        if got != value:
            raise StepFailed(f"field {number} is {_show(number, got)}, expected {value!r}")
    for number in e.present:
        if number not in fields:
            raise StepFailed(f"field {number} is absent, expected present")
    for number in e.absent:
        if number in fields:
            raise StepFailed(f"field {number} is present, expected absent")
    if e.available_balance is not None:
        _check_amount(fields.get("54"), AVAILABLE_BALANCE, "available balance", e.available_balance)
    if e.amount_due is not None:
        _check_amount(fields.get("54"), AMOUNT_DUE, "amount due", e.amount_due)
    why = check_field48(fields, e.field48, e.field48_present)
    if why is not None:
        raise StepFailed(why)
    check_answer_mac(answer, e.mac, taks)


def _check_amount(field54: str | None, amount_type: str, name: str, expected: int) -> None:
    """Field 54 holds an amount of `amount_type` (02 available balance, 04 amount due)."""
    if field54 is None:
        raise StepFailed(f"field 54 is absent, expected an {name} of {expected}")
    try:
        amounts = decode_field54(field54)
    except DecodeError as exc:
        raise StepFailed(f"field 54 does not decode: {exc.reason}") from None
    found = [a.amount for a in amounts if a.amount_type == amount_type]
    if not found:
        raise StepFailed(f"field 54 holds no {name} (amount type {amount_type})")
    if expected not in found:
        shown = ", ".join(str(a) for a in found)
        raise StepFailed(f"{name} {shown}, expected {expected}")


def check_answer_mac(answer: Answer, mode: str, taks: Sequence[PreparedMac]) -> None:
    """mode: verify (when present), required, absent, any; `taks` the terminal may use."""
    if mode == "any":
        return
    fields = answer.message.fields
    mac_hex = fields.get("128") or fields.get("64")
    if mac_hex is None:
        if mode == "required":
            raise StepFailed("answer carries no MAC")
        return
    if mode == "absent":
        raise StepFailed("answer carries a MAC, expected none")
    if not taks:
        if mode == "required":
            raise StepFailed("answer is MAC'd but the terminal has no TAK to verify it")
        return
    data = mac_input(answer.raw)
    mac = bytes.fromhex(mac_hex)
    if not any(k.verify(data, mac) for k in taks):
        raise StepFailed("answer MAC does not verify under the terminal's TAK")


def _show(number: str, value: str | None) -> str:
    if value is None:
        return "absent"
    if number in _SECRET_FIELDS:
        return "(present, not shown)"
    return repr(value)
