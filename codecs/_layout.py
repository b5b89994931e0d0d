"""Field layouts in ISO notation, rendered into pyiso8583 specs per wire encoding.

A layout says what the standard says (n6, LL n..19, LLL b..255); the rendering
says how a dialect puts it on the wire (ASCII digits or BCD nibbles, ASCII or
BCD length prefixes). Keeping the two apart lets the 1987 ASCII and BCD dialects
share one table.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import attrs

__all__ = ["Kind", "Layout", "Prefix", "render_ascii", "render_bcd"]

# n: numeric digits; z: track data (digits and a separator); an: any text
# (a, an, ans, anp, x+n); b: binary bytes, sent raw. Numerics and track data
# are ASCII; text is ISO 8859-1, which decodes any byte, so a station name with
# an umlaut in field 43 does not make a whole message undecodable.
Kind = Literal["n", "z", "an", "b"]
# "" fixed length; "LL" / "LLL" variable with a 2- / 3-digit length prefix.
Prefix = Literal["", "LL", "LLL"]

FieldSpec = dict[str, Any]


@attrs.frozen
class Layout:
    """One data element as the standard writes it: kind, prefix, (maximum) length."""

    kind: Kind
    prefix: Prefix
    length: int
    name: str

    @property
    def notation(self) -> str:
        """ISO notation, e.g. "n6", "LL n..19", "LLL b..255"."""
        if not self.prefix:
            return f"{self.kind}{self.length}"
        return f"{self.prefix} {self.kind}..{self.length}"


def fixed(kind: Kind, length: int, name: str) -> Layout:
    return Layout(kind, "", length, name)


def ll(kind: Kind, length: int, name: str) -> Layout:
    return Layout(kind, "LL", length, name)


def lll(kind: Kind, length: int, name: str) -> Layout:
    return Layout(kind, "LLL", length, name)


def _header_and_bitmaps(mti_enc: str, bitmap: Literal["binary", "hex"]) -> dict[str, FieldSpec]:
    bitmap_spec: FieldSpec = (
        {"data_enc": "b", "len_enc": "ascii", "len_type": 0, "max_len": 8}
        if bitmap == "binary"
        else {"data_enc": "ascii", "len_enc": "ascii", "len_type": 0, "max_len": 16}
    )
    mti_len = 2 if mti_enc == "b" else 4
    return {
        "h": {"data_enc": "ascii", "len_enc": "ascii", "len_type": 0, "max_len": 0, "desc": ""},
        "t": {
            "data_enc": mti_enc,
            "len_enc": "ascii",
            "len_type": 0,
            "max_len": mti_len,
            "desc": "Message type indicator",
        },
        "p": {**bitmap_spec, "desc": "Bitmap, primary"},
        "1": {**bitmap_spec, "desc": "Bitmap, secondary"},
    }


_ASCII_LEN_TYPE = {"": 0, "LL": 2, "LLL": 3}
_ASCII_DATA_ENC = {"n": "ascii", "z": "ascii", "an": "latin-1", "b": "b"}
_BCD_LEN_TYPE = {"": 0, "LL": 1, "LLL": 2}


def render_ascii(
    layouts: Mapping[int, Layout], bitmap: Literal["binary", "hex"]
) -> dict[str, FieldSpec]:
    """ASCII MTI, digits and text as ASCII, ASCII length prefixes, binary raw."""
    spec = _header_and_bitmaps("ascii", bitmap)
    for number, layout in layouts.items():
        spec[str(number)] = {
            "data_enc": _ASCII_DATA_ENC[layout.kind],
            "len_enc": "ascii",
            "len_type": _ASCII_LEN_TYPE[layout.prefix],
            "max_len": layout.length,
            "desc": layout.name,
        }
    return spec


def render_bcd(layouts: Mapping[int, Layout]) -> dict[str, FieldSpec]:
    """BCD MTI and numerics (fixed left-padded "0", variable right-padded "0"),
    BCD length prefixes counting digits for numerics and bytes otherwise,
    text as ISO 8859-1, binary raw, binary bitmaps."""
    spec = _header_and_bitmaps("b", "binary")
    for number, layout in layouts.items():
        field: FieldSpec = {
            "len_enc": "bcd",
            "len_type": _BCD_LEN_TYPE[layout.prefix],
            "max_len": layout.length,
            "desc": layout.name,
        }
        if layout.kind in ("n", "z"):
            field["data_enc"] = "b"
            field["len_count"] = "nibbles"
            if layout.prefix:
                field["right_pad"] = "0"
            else:
                field["left_pad"] = "0"
        elif layout.kind == "b":
            field["data_enc"] = "b"
        else:
            field["data_enc"] = "latin-1"
        spec[str(number)] = field
    return spec
