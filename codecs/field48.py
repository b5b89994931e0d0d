"""Field 48 of `ifsf`: message control data, a bitmap of sub-elements 2..64 and their values.

The field is binary (LLL b..999), so its `Message.fields` value is upper-case
hex: an 8-byte bitmap (bit 1, an extended bitmap, refused), then each present
sub-element in its format (SUBELEMENTS_48). Binary sub-elements are bytes, the
rest str.
"""

from __future__ import annotations

from collections.abc import Mapping

from ._layout import Kind, Layout, Prefix
from .errors import DecodeError, EncodeError

__all__ = ["SUBELEMENTS_48", "decode_field48", "encode_field48"]


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
    # forecourt's own (docs/terminal-interfaces.md): the cashier signed on, a terminal's
    # serial number and one-time activation code at registration, its devices' state
    15: _sub("an", "LL", 12, "Operator (cashier) id (forecourt)"),
    16: _sub("an", "LL", 32, "Terminal serial number (forecourt)"),
    17: _sub("an", "", 16, "Activation code (forecourt)"),
    18: _sub("n", "", 4, "Device status (forecourt)"),
    # forecourt's own: parameter downloads (docs/terminal-interfaces.md, docs/codecs.md)
    20: _sub("n", "", 8, "Parameter version (forecourt)"),
    21: _sub("n", "", 6, "Parameter chunk n of m (forecourt)"),
    22: _sub("n", "", 8, "Parameter download target version (forecourt)"),
    23: _sub("an", "", 1, "Parameter download status (forecourt)"),
    # forecourt's own (docs/codecs.md): a DUKPT PIN pad's key serial number (AES 12
    # bytes, TDES 10) and its AES PIN block (ISO 9564 format 4 does not fit field 52)
    29: _sub("b", "LL", 12, "DUKPT key serial number (forecourt)"),
    30: _sub("b", "", 16, "AES DUKPT PIN block, ISO 9564 format 4 (forecourt)"),
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
    # forecourt's own, IC fuel cards (docs/codecs.md, "IC fuel card sub-elements")
    50: _sub("n", "", 5, "IC card transaction counter (ATC)"),
    51: _sub("b", "", 4, "IC card TAC"),
    52: _sub("n", "", 4, "Pump and nozzle"),
    53: _sub("an", "", 33, "Grey record to complete"),
    54: _sub("an", "", 1, "IC card status"),
    55: _sub("an", "", 1, "Grey record state"),
    # forecourt's own: a wallet payment code scanned instead of a card (docs/wallets.md)
    60: _sub("n", "LL", 24, "Wallet payment code"),
    # forecourt's own (docs/codecs.md): the total of a split sale, beside 48-7's group id
    61: _sub("n", "", 12, "Split sale total (forecourt)"),
    # forecourt's own (docs/codecs.md, docs/terminal-interfaces.md): a status query's
    # answer, the original's state (A, D, R, P, U) and action code; a batch trailer's
    # count (n6) and amount (n12), the terminal's in the request, the switch's in the answer
    56: _sub("an", "", 4, "Original outcome (forecourt)"),
    57: _sub("n", "", 18, "Batch count and amount (forecourt)"),
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
