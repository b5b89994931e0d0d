"""Field 48 sub-elements in certification scripts, by number instead of raw hex.

A send step's `field48 = { 50 = "...", 4 = "0000000001" }` is merged into the
request's field 48 (ifsf: bitmap and sub-elements, codecs/field48.py); an
expectation's `field48 = { ... }` must match the answer's sub-elements, and
`field48_present = [ ... ]` must be there. Binary sub-elements are given as hex.
"""

from __future__ import annotations

from collections.abc import Mapping

from forecourt.codecs.errors import CodecError
from forecourt.codecs.field48 import SUBELEMENTS_48, decode_field48, encode_field48
from forecourt.codecs.message import Message

from ._toml import Table

__all__ = ["check_field48", "parse_field48", "parse_field48_present", "with_field48"]


def parse_field48(t: Table, key: str = "field48") -> dict[int, str]:
    """`key = { number = "value" }`: each number a known sub-element, each value text."""
    raw = t.raw(key, {})
    if not isinstance(raw, Mapping):
        raise t.error(key, "must be a table of sub-element number = value")
    out: dict[int, str] = {}
    for k, v in raw.items():
        if not (str(k).isdigit() and int(k) in SUBELEMENTS_48):
            raise t.error(f"{key}.{k}", "must be a field 48 sub-element codecs/field48.py knows")
        if not isinstance(v, str):
            raise t.error(f"{key}.{k}", "must be a string (sub-element values are text)")
        out[int(k)] = v
    return out


def parse_field48_present(t: Table) -> tuple[int, ...]:
    numbers = t.texts("field48_present")
    for n in numbers:
        if not (n.isdigit() and int(n) in SUBELEMENTS_48):
            raise t.error("field48_present", f"{n!r} is not a field 48 sub-element")
    return tuple(int(n) for n in numbers)


def _value(number: int, text: str) -> str | bytes:
    return bytes.fromhex(text) if SUBELEMENTS_48[number].kind == "b" else text


def with_field48(message: Message, elements: Mapping[int, str]) -> Message:
    """`message` with `elements` set in its field 48 (others it carries are kept)."""
    if not elements:
        return message
    present = message.fields.get("48")
    merged: dict[int, str | bytes] = dict(decode_field48(present)) if present else {}
    merged.update({n: _value(n, v) for n, v in elements.items()})
    return message.with_fields({48: encode_field48(merged)})


def _show(value: str | bytes | None) -> str:
    if value is None:
        return "absent"
    return value.hex().upper() if isinstance(value, bytes) else repr(value)


def check_field48(
    fields: Mapping[str, str], expected: Mapping[int, str], present: tuple[int, ...]
) -> str | None:
    """Why the answer's field 48 misses the expectation, or None when it does not."""
    if not expected and not present:
        return None
    raw = fields.get("48")
    try:
        got = decode_field48(raw) if raw else {}
    except CodecError as exc:
        return f"field 48 does not decode: {exc}"
    for number, value in expected.items():
        if got.get(number) != _value(number, value):
            return f"field 48-{number} is {_show(got.get(number))}, expected {value!r}"
    for number in present:
        if number not in got:
            return f"field 48-{number} is absent, expected present"
    return None
