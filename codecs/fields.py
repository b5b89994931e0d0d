"""Typed views of structured data elements, and masking.

Each helper turns one field's text (as it sits in `Message.fields`) into an
attrs value and back. Decoding raises DecodeError naming the field, never
quoting it; encoding raises EncodeError. Helpers are opt-in: `decode` of a
message never parses these sub-structures, so a malformed field 63 costs the
switch nothing unless it reads product data.

Layouts (see docs/codecs.md):

- 56 (1993): original MTI n4, STAN n6, local date-time n12 (YYMMDDhhmmss, the
  original's field 12), then optionally the acquirer id as LL n..11.
- 90 (1987): original MTI n4, STAN n6, transmission date-time n10
  (MMDDhhmmss), acquirer id n11, forwarding institution id n11 (zero-filled).
- 30 (1993): original transaction amount n12, original cardholder billing
  amount n12.
- 48 (ifsf): an 8-byte binary bitmap of sub-elements 2..64, then each present
  sub-element in its format (SUBELEMENTS_48); the field is binary, so its
  `Message.fields` value is upper-case hex.
- 63: product data, sub-fields each ended by a backslash: service level,
  number of items (n2), then per item product code, unit of measure, quantity,
  unit price, amount (minor units), tax code, additional product code.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from decimal import Decimal

import attrs

from ._layout import Kind, Layout, Prefix
from .errors import DecodeError, EncodeError

__all__ = [
    "SUBELEMENTS_48",
    "OriginalAmounts",
    "OriginalData",
    "OriginalElements",
    "ProductData",
    "ProductItem",
    "decode_field48",
    "encode_field48",
    "mask_pan",
    "mask_track2",
]


def mask_pan(pan: str) -> str:
    """First 6 and last 4 digits, "*" between (PCI DSS display rule).

    A PAN too short to keep 10 digits visible and still hide some shows only
    its last 4 (and nothing at 4 digits or fewer).
    """
    n = len(pan)
    if n > 10:
        return pan[:6] + "*" * (n - 10) + pan[-4:]
    if n > 4:
        return "*" * (n - 4) + pan[-4:]
    return "*" * n


def mask_track2(track: str) -> str:
    """The PAN of track 2 data masked, everything after the separator starred."""
    for separator in ("=", "D", "d"):
        pan, sep, rest = track.partition(separator)
        if sep:
            return mask_pan(pan) + sep + "*" * len(rest)
    return mask_pan(track)


def _digits(value: str, field: str, what: str, length: int | None = None) -> str:
    if not (value.isascii() and value.isdigit()) or (length is not None and len(value) != length):
        size = f"{length} " if length is not None else ""
        raise DecodeError(field, f"{what} is not {size}digits")
    return value


def _require_digits(value: str, field: str, what: str, lengths: range) -> None:
    if not (value.isascii() and value.isdigit() and len(value) in lengths):
        raise EncodeError(field, f"{what} must be {lengths.start}..{lengths.stop - 1} digits")


# -- field 56 (1993) -----------------------------------------------------------


@attrs.frozen
class OriginalData:
    """Field 56 (1993): which earlier message a reversal or advice refers to."""

    mti: str
    stan: str
    local_datetime: str  # YYMMDDhhmmss, the original's field 12
    acquirer_id: str | None = None

    def encode(self) -> str:
        _require_digits(self.mti, "56", "original MTI", range(4, 5))
        _require_digits(self.stan, "56", "original STAN", range(6, 7))
        _require_digits(self.local_datetime, "56", "original date-time", range(12, 13))
        text = self.mti + self.stan + self.local_datetime
        if self.acquirer_id is not None:
            _require_digits(self.acquirer_id, "56", "acquirer id", range(1, 12))
            text += f"{len(self.acquirer_id):02d}{self.acquirer_id}"
        return text

    @classmethod
    def decode(cls, value: str) -> OriginalData:
        _digits(value, "56", "original data elements")
        if len(value) < 22:
            raise DecodeError("56", "shorter than MTI, STAN and date-time")
        acquirer: str | None = None
        if len(value) > 22:
            length = int(value[22:24]) if len(value) >= 24 else -1
            if not 1 <= length <= 11 or len(value) != 24 + length:
                raise DecodeError("56", "acquirer id length does not match")
            acquirer = value[24:]
        return cls(value[:4], value[4:10], value[10:22], acquirer)

    @classmethod
    def of(cls, original_mti: str, fields: Mapping[str, str]) -> OriginalData:
        """The field 56 that refers to a message with these fields (11, 12, 32)."""
        return cls(original_mti, fields["11"], fields["12"], fields.get("32"))


# -- field 90 (1987) -----------------------------------------------------------


def _zero_fill_11(value: str) -> str:
    return value.zfill(11)


@attrs.frozen
class OriginalElements:
    """Field 90 (1987): original MTI, STAN, transmission time, acquirer and forwarder."""

    mti: str
    stan: str
    transmitted: str  # MMDDhhmmss, the original's field 7
    acquirer_id: str = attrs.field(default="0", converter=_zero_fill_11)
    forwarding_id: str = attrs.field(default="0", converter=_zero_fill_11)

    def encode(self) -> str:
        _require_digits(self.mti, "90", "original MTI", range(4, 5))
        _require_digits(self.stan, "90", "original STAN", range(6, 7))
        _require_digits(self.transmitted, "90", "original transmission time", range(10, 11))
        _require_digits(self.acquirer_id, "90", "acquirer id", range(11, 12))
        _require_digits(self.forwarding_id, "90", "forwarding id", range(11, 12))
        return self.mti + self.stan + self.transmitted + self.acquirer_id + self.forwarding_id

    @classmethod
    def decode(cls, value: str) -> OriginalElements:
        _digits(value, "90", "original data elements", 42)
        return cls(value[:4], value[4:10], value[10:20], value[20:31], value[31:42])

    @classmethod
    def of(cls, original_mti: str, fields: Mapping[str, str]) -> OriginalElements:
        """The field 90 that refers to a message with these fields (11, 7, 32, 33)."""
        return cls(
            original_mti, fields["11"], fields["7"], fields.get("32", "0"), fields.get("33", "0")
        )


# -- field 30 (1993) -----------------------------------------------------------


@attrs.frozen
class OriginalAmounts:
    """Field 30 (1993): the amounts of the original, in minor units.

    A completion (1220) carries the pre-authorised maximum here; a partial
    reversal the amount first approved.
    """

    transaction: int
    cardholder_billing: int = 0

    def encode(self) -> str:
        for amount in (self.transaction, self.cardholder_billing):
            if not 0 <= amount < 10**12:
                raise EncodeError("30", "amount out of range for n12")
        return f"{self.transaction:012d}{self.cardholder_billing:012d}"

    @classmethod
    def decode(cls, value: str) -> OriginalAmounts:
        _digits(value, "30", "original amounts", 24)
        return cls(int(value[:12]), int(value[12:]))


# -- field 63: product data ----------------------------------------------------

_QUANTITY = re.compile(r"\d{1,9}(\.\d{1,4})?")
_CODE = re.compile(r"[0-9A-Za-z]{1,6}")
_UNIT = re.compile(r"[A-Za-z]{1,3}")
_OPTIONAL_CODE = re.compile(r"[0-9A-Za-z]{0,6}")
_SEPARATOR = "\\"
_ITEM_PARTS = 7


def _decimal_text(value: Decimal, field: str, what: str) -> str:
    text = format(value, "f")
    if not _QUANTITY.fullmatch(text):
        raise EncodeError(field, f"{what} must be 0..999999999 with at most 4 decimals")
    return text


@attrs.frozen
class ProductItem:
    """One product of a sale: fuel grade or shop item.

    quantity and unit_price are decimals as the pump reports them ("42.17"
    litres at "1.659"); amount is in minor units of the transaction currency.
    """

    code: str
    unit: str  # "L" litre, "G" gallon, "KG", "U" unit/piece
    quantity: Decimal
    unit_price: Decimal
    amount: int
    tax_code: str = ""
    additional_code: str = ""

    def _parts(self) -> list[str]:
        if not _CODE.fullmatch(self.code):
            raise EncodeError("63", "product code must be 1..6 letters or digits")
        if not _UNIT.fullmatch(self.unit):
            raise EncodeError("63", "unit of measure must be 1..3 letters")
        if not 0 <= self.amount < 10**12:
            raise EncodeError("63", "item amount out of range for n..12")
        for extra in (self.tax_code, self.additional_code):
            if not _OPTIONAL_CODE.fullmatch(extra):
                raise EncodeError("63", "tax and additional codes are 0..6 letters or digits")
        return [
            self.code,
            self.unit,
            _decimal_text(self.quantity, "63", "quantity"),
            _decimal_text(self.unit_price, "63", "unit price"),
            str(self.amount),
            self.tax_code,
            self.additional_code,
        ]


def _item_tuple(items: Iterable[ProductItem]) -> tuple[ProductItem, ...]:
    return tuple(items)


@attrs.frozen
class ProductData:
    """Field 63: service level and the products sold (at most 99 items)."""

    service_level: str  # "S" self-serve, "F" full serve, "N" none (shop)
    items: tuple[ProductItem, ...] = attrs.field(converter=_item_tuple)

    @property
    def total(self) -> int:
        """Sum of the item amounts, to check against field 4."""
        return sum(item.amount for item in self.items)

    def encode(self) -> str:
        if len(self.service_level) != 1 or not self.service_level.isalpha():
            raise EncodeError("63", "service level must be one letter")
        if not 1 <= len(self.items) <= 99:
            raise EncodeError("63", "product data holds 1..99 items")
        parts = [self.service_level, f"{len(self.items):02d}"]
        for item in self.items:
            parts.extend(item._parts())
        text = _SEPARATOR.join(parts) + _SEPARATOR
        if len(text) > 999:
            raise EncodeError("63", "product data longer than 999 characters")
        return text

    @classmethod
    def decode(cls, value: str) -> ProductData:
        if not value.endswith(_SEPARATOR):
            raise DecodeError("63", "product data does not end with a separator")
        parts = value[:-1].split(_SEPARATOR)
        if len(parts) < 2 or len(parts[0]) != 1 or not parts[0].isalpha():
            raise DecodeError("63", "service level missing")
        count_text = _digits(parts[1], "63", "number of items", 2)
        count = int(count_text)
        if count == 0 or len(parts) != 2 + count * _ITEM_PARTS:
            raise DecodeError("63", "number of items does not match the data")
        items = []
        for i in range(count):
            code, unit, quantity, price, amount, tax, extra = parts[
                2 + i * _ITEM_PARTS : 2 + (i + 1) * _ITEM_PARTS
            ]
            if not (_CODE.fullmatch(code) and _UNIT.fullmatch(unit)):
                raise DecodeError("63", f"item {i + 1}: bad product code or unit")
            if not (_QUANTITY.fullmatch(quantity) and _QUANTITY.fullmatch(price)):
                raise DecodeError("63", f"item {i + 1}: bad quantity or unit price")
            if not (amount.isascii() and amount.isdigit() and len(amount) <= 12):
                raise DecodeError("63", f"item {i + 1}: bad amount")
            if not (_OPTIONAL_CODE.fullmatch(tax) and _OPTIONAL_CODE.fullmatch(extra)):
                raise DecodeError("63", f"item {i + 1}: bad tax or additional code")
            items.append(
                ProductItem(code, unit, Decimal(quantity), Decimal(price), int(amount), tax, extra)
            )
        return cls(parts[0], tuple(items))


# -- field 48 (ifsf): bitmapped sub-elements -----------------------------------


def _sub(kind: Kind, prefix: Prefix, length: int, name: str) -> Layout:
    return Layout(kind, prefix, length, name)


# IFSF message control data elements, as public IFSF host-to-host
# implementations define them. Binary sub-elements decode to bytes, the rest to str.
SUBELEMENTS_48: dict[int, Layout] = {
    2: _sub("an", "", 20, "Hardware and software configuration"),
    3: _sub("an", "", 2, "Language code"),
    4: _sub("n", "", 10, "Batch/sequence number"),
    5: _sub("n", "", 3, "Shift number"),
    7: _sub("n", "", 9, "Multiple transaction control"),
    8: _sub("an", "LLL", 250, "Customer data"),
    9: _sub("z", "LL", 37, "Track 2 for second card"),
    10: _sub("an", "LL", 76, "Track 1 for second card"),
    14: _sub("an", "", 2, "PIN encryption methodology"),
    33: _sub("an", "LLL", 104, "Track 3 for second card"),  # 104 needs three digits
    37: _sub("an", "", 1, "Vehicle identification entry mode"),
    38: _sub("n", "", 1, "Pump linked indicator"),
    39: _sub("n", "", 10, "Delivery note number"),
    40: _sub("b", "", 4, "Encryption parameter"),
    43: _sub("n", "", 1, "Solution identifier"),
    45: _sub("an", "LL", 17, "VIB box identifier"),
    46: _sub("an", "LL", 17, "Truck VIN"),
    48: _sub("n", "", 12, "Timestamp"),
    49: _sub("b", "LL", 99, "VIB additional data"),
}
_PREFIX_DIGITS = {"": 0, "LL": 2, "LLL": 3}


def decode_field48(value: str) -> dict[int, str | bytes]:
    """Field 48 of `ifsf` (upper-case hex, as decoded) to {sub-element: value}."""
    try:
        data = bytes.fromhex(value)
    except ValueError:
        raise DecodeError("48", "not hex") from None
    if len(data) < 8:
        raise DecodeError("48", "shorter than its bitmap")
    bitmap = int.from_bytes(data[:8], "big")
    if bitmap >> 63:
        raise DecodeError("48", "extended sub-element bitmap not supported")
    out: dict[int, str | bytes] = {}
    idx = 8
    for number in range(2, 65):
        if not bitmap >> (64 - number) & 1:
            continue
        layout = SUBELEMENTS_48.get(number)
        if layout is None:
            raise DecodeError("48", f"sub-element {number} is not defined")
        digits = _PREFIX_DIGITS[layout.prefix]
        if digits:
            prefix = data[idx : idx + digits]
            if len(prefix) != digits or not prefix.isdigit():
                raise DecodeError("48", f"sub-element {number}: bad length prefix")
            length = int(prefix)
            if length > layout.length:
                raise DecodeError("48", f"sub-element {number}: longer than {layout.length}")
            idx += digits
        else:
            length = layout.length
        body = data[idx : idx + length]
        if len(body) != length:
            raise DecodeError("48", f"sub-element {number}: truncated")
        idx += length
        if layout.kind == "b":
            out[number] = body
        else:
            text = body.decode("latin-1")
            if layout.kind in ("n", "z") and not _numeric_ok(text, layout.kind):
                raise DecodeError("48", f"sub-element {number}: not numeric")
            out[number] = text
    if idx != len(data):
        raise DecodeError("48", "data after the last sub-element")
    return out


def _numeric_ok(text: str, kind: str) -> bool:
    allowed = "0123456789" if kind == "n" else "0123456789=D"
    return all(c in allowed for c in text)


def encode_field48(elements: Mapping[int, str | bytes]) -> str:
    """{sub-element: value} to field 48 of `ifsf` (upper-case hex, ready for Message.fields)."""
    bitmap = 0
    body = bytearray()
    for number in sorted(elements):
        layout = SUBELEMENTS_48.get(number)
        if layout is None:
            raise EncodeError("48", f"sub-element {number} is not defined")
        value = elements[number]
        if layout.kind == "b":
            if not isinstance(value, bytes):
                raise EncodeError("48", f"sub-element {number} is binary: give bytes")
            raw = value
        else:
            if not isinstance(value, str):
                raise EncodeError("48", f"sub-element {number} is text: give str")
            if layout.kind in ("n", "z") and not _numeric_ok(value, layout.kind):
                raise EncodeError("48", f"sub-element {number}: not numeric")
            try:
                raw = value.encode("latin-1")
            except UnicodeEncodeError:
                raise EncodeError("48", f"sub-element {number}: not ISO 8859-1") from None
        digits = _PREFIX_DIGITS[layout.prefix]
        if digits:
            if len(raw) > layout.length or len(raw) >= 10**digits:
                raise EncodeError("48", f"sub-element {number}: longer than {layout.length}")
            body += b"%0*d" % (digits, len(raw))
        elif len(raw) != layout.length:
            raise EncodeError("48", f"sub-element {number}: must be {layout.length} long")
        body += raw
        bitmap |= 1 << (64 - number)
    data = bitmap.to_bytes(8, "big") + bytes(body)
    if len(data) > 999:
        raise EncodeError("48", "longer than 999 bytes")
    return data.hex().upper()
