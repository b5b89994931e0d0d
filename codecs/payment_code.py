"""The wallet payment code a terminal scanned: ifsf field 48 sub-element 60.

A payment code is a one-time token the customer's wallet app shows as a
barcode; it is as good as a card number until it expires, so it is masked
wherever it is written (the journal, logs) and never echoed in an answer. It
routes like a PAN, by prefix, but over its own table (`payment_code_prefixes`),
because code prefixes and card ranges overlap.
"""

from __future__ import annotations

from forecourt.codecs.errors import DecodeError
from forecourt.codecs.field48 import decode_field48, encode_field48
from forecourt.codecs.message import Message

__all__ = [
    "PAYMENT_CODE_ELEMENT",
    "mask_payment_code",
    "masked_payment_code",
    "payment_code_of",
    "with_payment_code",
]

PAYMENT_CODE_ELEMENT = 60


def payment_code_of(message: Message) -> str | None:
    """The payment code of an ifsf message, or None (no field 48, no 48-60, or a bad 48)."""
    value = message.fields.get("48")
    if not value:
        return None
    try:
        code = decode_field48(value).get(PAYMENT_CODE_ELEMENT)
    except DecodeError:
        return None
    return code if isinstance(code, str) and code else None


def mask_payment_code(code: str) -> str:
    """First four digits (the wallet's prefix) and last two; between them '*' (2 to 13)."""
    if len(code) <= 6:
        return "*" * max(2, len(code))
    return code[:4] + "*" * min(13, len(code) - 6) + code[-2:]


def masked_payment_code(message: Message) -> str | None:
    code = payment_code_of(message)
    return mask_payment_code(code) if code is not None else None


def with_payment_code(message: Message, code: str) -> Message:
    """A card request made a wallet one: no PAN, expiry or track; the code in 48-60."""
    return message.with_fields({2: None, 14: None, 35: None, 48: encode_field48({60: code})})
