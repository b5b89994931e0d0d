"""Dialects: a pyiso8583 spec plus the checks that make decoding total and canonical.

`decode` raises only `DecodeError`, whatever the bytes; `encode` raises only
`EncodeError`. Neither validates field content classes (n, an, ...): that would
cost a pass over every field of every message, and the switch checks the few
fields it acts on. `check_content` does the full pass for those who want it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any, Literal

import attrs
from iso8583 import decode as _iso_decode
from iso8583 import encode as _iso_encode
from iso8583.decoder import DecodeError as _IsoDecodeError
from iso8583.encoder import EncodeError as _IsoEncodeError

from . import ifsf, iso87ascii, iso87bcd
from ._fast import FastCodec
from ._layout import Layout
from .errors import DecodeError, EncodeError, UnknownDialect
from .family import Family
from .message import Message

__all__ = [
    "DIALECT_NAMES",
    "MAC_LENGTH",
    "Dialect",
    "check_content",
    "decode",
    "encode",
    "encode_for_mac",
    "encode_with_mac",
    "get_dialect",
    "identify",
    "mac_input",
    "put_mac",
]

DIALECT_NAMES: tuple[str, ...] = (ifsf.NAME, iso87ascii.NAME, iso87bcd.NAME)
MAC_LENGTH = 8

# pyiso8583's keys for the parts that are not data elements.
_PART_NAMES = {"t": "mti", "p": "bitmap", "1": "bitmap", "h": "header"}


@attrs.frozen
class Dialect:
    """A wire dialect: its name, ISO 8583 version family and pyiso8583 spec.

    Get one from `get_dialect` (cached; cheap to call per message).
    """

    name: str
    family: Family = attrs.field(converter=Family)
    spec: Mapping[str, Mapping[str, Any]] = attrs.field(repr=False)
    bitmap: str = "binary"
    layout: Mapping[int, Layout] = attrs.field(factory=dict, repr=False, eq=False)
    # Derived once, used on every message.
    elements: frozenset[str] = attrs.field(init=False, repr=False, eq=False)
    version: str = attrs.field(init=False, repr=False, eq=False)
    text_lengths: bool = attrs.field(init=False, repr=False, eq=False)
    fast: FastCodec | None = attrs.field(init=False, repr=False, eq=False)

    @elements.default
    def _elements(self) -> frozenset[str]:
        return frozenset(k for k in self.spec if k.isdigit() and k != "1")

    @version.default
    def _version(self) -> str:
        return "1" if self.family is Family.ISO1993 else "0"

    @text_lengths.default
    def _text_lengths(self) -> bool:
        return all(f["len_enc"] == "ascii" for f in self.spec.values())

    @fast.default
    def _fast(self) -> FastCodec | None:
        return FastCodec(self.spec, self.version) if FastCodec.supports(self.spec) else None


@functools.cache
def get_dialect(name: str, bitmap: str = "binary") -> Dialect:
    """The dialect called `name`; `bitmap` is "binary" or "hex" (not for iso87bcd)."""
    if bitmap not in ("binary", "hex"):
        raise UnknownDialect(f"{name} with a {bitmap!r} bitmap")
    form: Literal["binary", "hex"] = "binary" if bitmap == "binary" else "hex"
    if name == ifsf.NAME:
        return Dialect(name, ifsf.FAMILY, ifsf.spec(form), bitmap, ifsf.LAYOUT)
    if name == iso87ascii.NAME:
        return Dialect(name, iso87ascii.FAMILY, iso87ascii.spec(form), bitmap, iso87ascii.LAYOUT)
    if name == iso87bcd.NAME:
        if form != "binary":
            raise UnknownDialect(f"{name} with a {bitmap!r} bitmap")
        return Dialect(name, iso87bcd.FAMILY, iso87bcd.spec(), bitmap, iso87bcd.LAYOUT)
    raise UnknownDialect(name)


def decode(dialect: Dialect, data: bytes | bytearray | memoryview) -> Message:
    """Decode one message (no length header, no TPDU); raises only DecodeError.

    Besides pyiso8583's own checks it refuses what would not re-encode to the
    same bytes: an MTI that is not four digits of the dialect's version, a
    tertiary bitmap, a length prefix that is not plain digits (Python's int()
    would take " 5", "+5" or "1_0"). One departure is accepted and normalised:
    a secondary bitmap that flags no field (some stacks always write one)
    decodes as if it were absent; `raw` stays the bytes received, for the MAC.
    """
    fast = dialect.fast
    if fast is not None and type(data) is bytes:
        done = fast.decode(data)
        if done is not None:
            return Message(done[0], done[1], data)
    try:
        raw = data if type(data) is bytes else bytes(memoryview(data))
        doc, enc = _iso_decode(raw, dialect.spec)
    except _IsoDecodeError as exc:
        raise DecodeError(_PART_NAMES.get(exc.field, exc.field), exc.msg) from None
    except KeyError:
        # The spec has no field 65 or 129..192: only a tertiary bitmap gets here.
        raise DecodeError("65", "tertiary bitmap not supported") from None
    except Exception as exc:
        # TypeError for a non-bytes argument; anything else pyiso8583 lets slip.
        raise DecodeError(None, f"undecodable message ({type(exc).__name__})") from None

    mti = doc.pop("t")
    if not (mti.isdigit() and mti[0] == dialect.version):
        raise DecodeError("mti", f"not a {dialect.family} message type")
    primary = doc.pop("p")
    secondary = doc.pop("1", None)
    if dialect.bitmap == "hex" and not _is_hex(primary):
        raise DecodeError("bitmap", "primary bitmap is not 16 hex digits")
    if secondary is not None:
        if len(secondary) != 16:
            raise DecodeError("65", "tertiary bitmap not supported")
        if dialect.bitmap == "hex" and not _is_hex(secondary):
            raise DecodeError("bitmap", "secondary bitmap is not 16 hex digits")
    if dialect.text_lengths:
        for key, part in enc.items():
            prefix = part["len"]
            if prefix and not prefix.isdigit():
                raise DecodeError(key, "length prefix is not decimal digits")
    return Message(mti, doc, raw)


_HEX = frozenset("0123456789ABCDEFabcdef")


def _is_hex(text: str) -> bool:
    return len(text) == 16 and _HEX.issuperset(text)


def encode(dialect: Dialect, msg: Message) -> bytes:
    """Encode a message (no length header, no TPDU); raises only EncodeError."""
    mti = msg.mti
    if not (isinstance(mti, str) and len(mti) == 4 and mti.isdigit()):
        raise EncodeError("mti", "message type is not four digits")
    if mti[0] != dialect.version:
        raise EncodeError("mti", f"not a {dialect.family} message type")
    doc = dict(msg.fields)  # pyiso8583 writes into the dict it is given
    if not doc.keys() <= dialect.elements:
        stray = sorted(doc.keys() - dialect.elements, key=str)
        raise EncodeError(str(stray[0]), f"not a data element of {dialect.name}")
    fast = dialect.fast
    if fast is not None:
        raw_fast = fast.encode(mti, doc)
        if raw_fast is not None:
            return raw_fast
    doc["t"] = mti
    try:
        raw, _ = _iso_encode(doc, dialect.spec)
    except _IsoEncodeError as exc:
        raise EncodeError(_PART_NAMES.get(exc.field, exc.field), exc.msg) from None
    except Exception as exc:
        raise EncodeError(None, f"unencodable message ({type(exc).__name__})") from None
    return bytes(raw)


def encode_with_mac(dialect: Dialect, msg: Message, mac: Callable[[bytes], bytes]) -> bytes:
    """Encode with an 8-byte placeholder MAC, then put mac(encoded[:-8]) in its place.

    The MAC goes in 128 when any field over 64 is present, else in 64; the other
    MAC field is removed. The MAC field is always last, so the MAC input is
    everything before the last 8 bytes.
    """
    raw = encode_for_mac(dialect, msg)
    return put_mac(raw, mac(raw[:-MAC_LENGTH]))


def encode_for_mac(dialect: Dialect, msg: Message) -> bytes:
    """`msg` encoded with an 8-byte placeholder in its MAC field (as `encode_with_mac`),
    for a MAC computed elsewhere (a security module, awaited): the MAC covers
    `mac_input` of it, and `put_mac` puts it in."""
    field = _mac_field_for(msg)
    other = "64" if field == "128" else "128"
    fields = {k: v for k, v in msg.fields.items() if k != other}
    fields[field] = "00" * MAC_LENGTH
    return encode(dialect, Message(msg.mti, fields))


def put_mac(raw: bytes, code: bytes) -> bytes:
    """`raw` from `encode_for_mac` with `code` in place of its placeholder."""
    if len(code) != MAC_LENGTH:
        raise EncodeError("mac", f"MAC function returned {len(code)} bytes, expected 8")
    return raw[:-MAC_LENGTH] + bytes(code)


def _mac_field_for(msg: Message) -> str:
    for key in msg.fields:
        if key.isdigit() and key not in ("64", "128") and int(key) > 64:
            return "128"
    return "64"


def mac_input(raw: bytes) -> bytes:
    """The bytes a MAC covers: everything before the last 8 (the MAC is always last)."""
    return raw[:-MAC_LENGTH]


def identify(
    dialect: Dialect, data: bytes | bytearray | memoryview
) -> tuple[str | None, str | None, str | None]:
    """Best-effort (MTI, field 41, field 11) from a message that does not decode.

    Walks the fields in order, as far as they parse, so the switch can answer
    904 / 30 to the right terminal and STAN instead of dropping the connection.
    Never raises.
    """
    try:
        return _identify(dialect, bytes(data))
    except Exception:
        return (None, None, None)


def _identify(dialect: Dialect, data: bytes) -> tuple[str | None, str | None, str | None]:
    spec = dialect.spec
    binary_mti = spec["t"]["data_enc"] == "b"
    mti_len = 2 if binary_mti else 4
    if len(data) < mti_len:
        return (None, None, None)
    head = data[:mti_len]
    text = head.hex() if binary_mti else head.decode("ascii", "replace")
    mti = text if text.isdigit() else None

    hex_bitmap = spec["p"]["data_enc"] != "b"
    bitmap_len = 16 if hex_bitmap else 8
    idx = mti_len
    present: list[int] = []
    for offset in (0, 64):
        chunk = data[idx : idx + bitmap_len]
        if len(chunk) != bitmap_len:
            return (mti, None, None)
        value = int(chunk, 16) if hex_bitmap else int.from_bytes(chunk, "big")
        present.extend(offset + i + 1 for i in range(64) if value >> (63 - i) & 1)
        idx += bitmap_len
        if offset == 0 and present[:1] != [1]:
            break

    found: dict[str, str] = {}
    for number in present:
        if number == 1:
            continue
        key = str(number)
        if key not in spec or len(found) == 2:
            break
        field = spec[key]
        extent = _extent(field, data, idx)
        if extent is None:
            break
        prefix_len, body_len = extent
        if key in ("11", "41"):
            body = data[idx + prefix_len : idx + prefix_len + body_len]
            if field["data_enc"] == "b":
                value_text = body.hex().upper()
                if field.get("left_pad") and field["max_len"] % 2:
                    value_text = value_text[1:]
            else:
                value_text = body.decode("ascii")
            found[key] = value_text
        idx += prefix_len + body_len
    return (mti, found.get("41"), found.get("11"))


def _extent(field: Mapping[str, Any], data: bytes, idx: int) -> tuple[int, int] | None:
    """(prefix bytes, body bytes) of the field at idx, or None if it does not parse."""
    len_type: int = field["len_type"]
    if len_type == 0:
        count: int = field["max_len"]
    else:
        prefix = data[idx : idx + len_type]
        if len(prefix) != len_type:
            return None
        if field["len_enc"] == "b":
            count = int.from_bytes(prefix, "big")
        elif field["len_enc"] == "bcd":
            digits = prefix.hex()
            if not digits.isdigit():
                return None
            count = int(digits)
        else:
            if not prefix.isdigit():
                return None
            count = int(prefix)
        if count > field["max_len"]:
            return None
    body = (count + 1) // 2 if field.get("len_count") == "nibbles" else count
    if idx + len_type + body > len(data):
        return None
    return (len_type, body)


_CONTENT_CHECKS: dict[str, Callable[[str], bool]] = {
    "n": str.isdigit,
    "z": lambda v: all(c in "0123456789=D" for c in v),
    "an": lambda v: v.isascii() and v.isprintable(),
    "b": lambda v: all(c in "0123456789ABCDEF" for c in v),
}
_KIND_NAMES = {"n": "numeric", "z": "track data", "an": "printable text", "b": "hex"}


def check_content(dialect: Dialect, msg: Message) -> None:
    """Check every field's characters against its ISO kind; raise DecodeError at the first miss.

    Not part of `decode` (it would cost a pass over every field of every
    message); call it where a field's class matters, e.g. before trusting an
    amount, or in tests and simulators.
    """
    layout = dialect.layout
    for key, value in msg.fields.items():
        entry = layout.get(int(key)) if key.isdigit() else None
        if entry is None:
            raise DecodeError(key, f"not a data element of {dialect.name}")
        if not _CONTENT_CHECKS[entry.kind](value):
            raise DecodeError(key, f"not {_KIND_NAMES[entry.kind]}")
