"""What the IC card messages carry (docs/codecs.md, "IC fuel card sub-elements") and
the answers the switch makes of a grey decision.

Requests: the card in field 2 or 35, the amount in 4 (n12) and its currency in 49,
the pump's local date-time in 12, and in field 48: 50 the card's transaction
counter (ATC, n5), 51 its TAC (b4), 52 the pump and nozzle (n2 + n2). Answers:
48-50/51/52 of the record, 48-53 what to complete, 48-54 the card's status, 48-55
the record's state.
"""

from __future__ import annotations

import attrs
from forecourt.codecs.errors import CodecError
from forecourt.codecs.field48 import decode_field48, encode_field48
from forecourt.codecs.message import Message
from forecourt.switch.transaction import pan_of

from .ops import GreyRecord

__all__ = [
    "STATE_LETTERS",
    "STATUS_LETTERS",
    "IcRequest",
    "MalformedIcMessage",
    "read_request",
    "record_elements",
]

STATUS_LETTERS = {"active": "A", "blocked": "B", "lost": "L"}
STATE_LETTERS = {"open": "O", "completed": "C", "cleared": "X", "flagged": "F"}
INSTRUCTION_LETTERS = {"complete": "C", "clear": "X"}


class MalformedIcMessage(Exception):
    """A field the message needs is missing or malformed: answered 904, counted."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"field {field}: {reason}")
        self.field = field
        self.reason = reason


@attrs.frozen
class IcRequest:
    pan: str = attrs.field(repr=False)
    terminal_id: str
    atc: int | None = None
    tac: bytes | None = None
    pump: str = ""
    nozzle: str = ""
    amount: int | None = None
    currency: str = ""
    local_time: str = ""


def _digits(fields: dict[str, str], number: str, size: int | None = None) -> str:
    value = fields.get(number)
    if value is None:
        raise MalformedIcMessage(number, "missing")
    if not value.isdigit() or (size is not None and len(value) != size):
        raise MalformedIcMessage(number, "malformed")
    return value


def read_request(message: Message, *, debit: bool) -> IcRequest:
    """The request's facts; `debit` (a grey-lock or result) needs ATC, TAC, pump and
    nozzle, amount, currency and local time, an unlock or card check only the card."""
    fields = dict(message.fields)
    pan = pan_of(message)
    if not pan or not pan.isdigit() or not 12 <= len(pan) <= 19:
        raise MalformedIcMessage("2", "no card number (field 2 or 35)")
    try:
        sub = decode_field48(fields["48"]) if "48" in fields else {}
    except CodecError as exc:
        raise MalformedIcMessage("48", str(exc)) from None
    atc_text = sub.get(50)
    atc = int(atc_text) if isinstance(atc_text, str) else None
    if atc is not None and atc > 0xFFFF:
        raise MalformedIcMessage("48-50", "above 65535 (two bytes on the card)")
    terminal_id = fields.get("41", "").strip()
    if not debit:
        return IcRequest(pan, terminal_id, atc)
    tac = sub.get(51)
    pump_nozzle = sub.get(52)
    if atc is None:
        raise MalformedIcMessage("48-50", "the card's transaction counter is missing")
    if not isinstance(tac, bytes):
        raise MalformedIcMessage("48-51", "the TAC is missing")
    if not isinstance(pump_nozzle, str):
        raise MalformedIcMessage("48-52", "the pump and nozzle are missing")
    return IcRequest(
        pan,
        terminal_id,
        atc,
        tac,
        pump_nozzle[:2],
        pump_nozzle[2:],
        int(_digits(fields, "4", 12)),
        _digits(fields, "49", 3),
        _digits(fields, "12", 12),
    )


def record_elements(rec: GreyRecord, instruction: str | None = None) -> str:
    """Field 48 of an answer about `rec`: its ATC, TAC, pump and nozzle and state, and
    (an unlock's answer) what the card is to complete: 48-53."""
    elements: dict[int, str | bytes] = {
        50: f"{rec.atc:05d}",
        51: bytes.fromhex(rec.tac),
        52: f"{rec.pump:0>2.2}{rec.nozzle:0>2.2}",
        55: STATE_LETTERS[rec.state],
    }
    if instruction is not None:
        amount = rec.final_amount or 0
        elements[53] = (
            f"{INSTRUCTION_LETTERS[instruction]}{amount:012d}{rec.terminal_id:<8.8}{rec.local_time}"
        )
    return encode_field48(elements)
