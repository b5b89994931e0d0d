"""Round trips for every field of every dialect: decode(encode(m)) == m and
encode(decode(x)) == x, for values drawn from each field's format."""

from __future__ import annotations

import pytest
from forecourt.codecs.dialect import DIALECT_NAMES, Dialect, decode, encode, get_dialect
from forecourt.codecs.message import Message
from hypothesis import given, settings
from hypothesis import strategies as st

from .strategies import message

DIALECTS = [get_dialect(name) for name in DIALECT_NAMES] + [
    get_dialect("iso87ascii", "hex"),
    get_dialect("ifsf", "hex"),
]


def _ids(dialect: Dialect) -> str:
    return f"{dialect.name}-{dialect.bitmap}"


def _round_trip(dialect: Dialect, msg: Message) -> None:
    raw = encode(dialect, msg)
    back = decode(dialect, raw)
    assert back == msg
    assert back.raw == raw
    assert encode(dialect, back) == raw


@pytest.mark.parametrize("dialect", DIALECTS, ids=_ids)
@settings(max_examples=15, deadline=None)
@given(data=st.data())
def test_message_with_every_field_round_trips(dialect: Dialect, data: st.DataObject) -> None:
    # Every data element the dialect defines, present at once: each example
    # exercises every field's format (fixed, LL, LLL; n, z, text, binary).
    msg = data.draw(message(dialect, sorted(dialect.layout), cap=12))
    _round_trip(dialect, msg)


@pytest.mark.parametrize("dialect", DIALECTS, ids=_ids)
@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_random_messages_round_trip(dialect: Dialect, data: st.DataObject) -> None:
    msg = data.draw(message(dialect))
    _round_trip(dialect, msg)


@pytest.mark.parametrize("dialect", DIALECTS[:3], ids=_ids)
@pytest.mark.parametrize("number", [2, 35, 52, 55, 63, 64, 90, 96, 128])
@settings(max_examples=10, deadline=None)
@given(data=st.data())
def test_fields_the_switch_reads_round_trip(
    dialect: Dialect, number: int, data: st.DataObject
) -> None:
    msg = data.draw(message(dialect, [3, 11, 41, number], cap=None))
    _round_trip(dialect, msg)


def _extreme(dialect: Dialect, number: int, longest: bool) -> str:
    layout = dialect.layout[number]
    size = layout.length if (longest or not layout.prefix) else 0
    if layout.kind == "b":
        return "A5" * size
    if layout.kind == "n":
        return "9" * size
    if layout.kind == "z":
        return ("4761739001010010D" * 10)[:size]
    return ("\xfcZ~ " * size)[:size]  # text is ISO 8859-1: an umlaut must pass


@pytest.mark.parametrize("dialect", DIALECTS, ids=_ids)
def test_every_field_at_its_limits(dialect: Dialect) -> None:
    # Longest and shortest value of each field, one field per message.
    for number in sorted(dialect.layout):
        for longest in (True, False):
            value = _extreme(dialect, number, longest)
            if dialect.layout[number].kind == "z" and dialect.name != "iso87bcd":
                value = value.replace("D", "=")
            _round_trip(dialect, Message(dialect.version + "200", {str(number): value}))
