"""Whatever the bytes, decode raises only DecodeError; what it accepts re-encodes
to the same bytes (less a secondary bitmap that flags nothing); identify never raises."""

from __future__ import annotations

import pytest
from forecourt.codecs.dialect import (
    DIALECT_NAMES,
    Dialect,
    decode,
    encode,
    get_dialect,
    identify,
)
from forecourt.codecs.errors import DecodeError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .bitmaps import without_empty_secondary
from .strategies import message

DIALECTS = [get_dialect(name) for name in DIALECT_NAMES] + [get_dialect("iso87ascii", "hex")]


def _ids(dialect: Dialect) -> str:
    return f"{dialect.name}-{dialect.bitmap}"


def _check(dialect: Dialect, data: bytes) -> None:
    try:
        msg = decode(dialect, data)
    except DecodeError as exc:
        assert exc.reason
    else:
        if dialect.bitmap == "binary":
            assert encode(dialect, msg) == without_empty_secondary(dialect, data)
        else:  # a hex bitmap may come in lower case
            assert decode(dialect, encode(dialect, msg)) == msg
    mti, terminal, stan = identify(dialect, data)
    assert mti is None or len(mti) == 4
    assert terminal is None or isinstance(terminal, str)
    assert stan is None or isinstance(stan, str)


@pytest.mark.parametrize("dialect", DIALECTS, ids=_ids)
@settings(max_examples=150, deadline=None)
@given(data=st.binary(max_size=300))
def test_random_bytes_raise_only_decode_error(dialect: Dialect, data: bytes) -> None:
    _check(dialect, data)


@pytest.mark.parametrize("dialect", DIALECTS, ids=_ids)
@settings(max_examples=150, deadline=None)
@given(data=st.binary(max_size=200))
def test_random_bodies_behind_a_valid_head_raise_only_decode_error(
    dialect: Dialect, data: bytes
) -> None:
    # A plausible MTI and bitmap get the decoder past the first checks, into the fields.
    head = {"ifsf": b"1200", "iso87ascii": b"0200", "iso87bcd": b"\x02\x00"}[dialect.name]
    _check(dialect, head + data)


_MUTATION = st.tuples(
    st.sampled_from(["flip", "insert", "delete", "truncate", "replace"]),
    st.integers(min_value=0, max_value=10_000),
    st.integers(min_value=0, max_value=255),
)


# What terminals and hosts send, plus a field of every format.
_TYPICAL = [2, 3, 4, 7, 11, 12, 14, 22, 24, 25, 30, 32, 35, 37, 38, 39, 41, 42, 43]
_TYPICAL += [48, 49, 52, 53, 54, 55, 56, 63, 64, 70, 90, 96, 97, 100, 128]


@pytest.mark.parametrize("dialect", DIALECTS, ids=_ids)
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.data(),
    fields=st.lists(st.sampled_from(_TYPICAL), min_size=1, max_size=12, unique=True),
    mutations=st.lists(_MUTATION, min_size=1, max_size=4),
)
def test_mutated_messages_raise_only_decode_error(
    dialect: Dialect, data: st.DataObject, fields: list[int], mutations: list[tuple[str, int, int]]
) -> None:
    raw = bytearray(encode(dialect, data.draw(message(dialect, sorted(fields), cap=20))))
    for kind, where, byte in mutations:
        at = where % (len(raw) + 1)
        if kind == "flip" and at < len(raw):
            raw[at] ^= 1 << (byte % 8)
        elif kind == "insert":
            raw[at:at] = bytes([byte])
        elif kind == "delete" and at < len(raw):
            del raw[at]
        elif kind == "truncate":
            del raw[at:]
        elif kind == "replace" and at < len(raw):
            raw[at] = byte
    _check(dialect, bytes(raw))


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"1",
        b"12",
        b"\x00" * 12,
        b"1200" + b"\x80" + b"\x00" * 7,  # secondary bitmap announced, absent
        b"1200" + b"\x80" + b"\x00" * 7 + b"\x80" + b"\x00" * 15,  # tertiary bitmap
        b"1200" + b"\x80" + b"\x00" * 7 + b"\x80" + b"\x00" * 7 + b"\x80" + b"\x00" * 7,
        b"1200" + b"\x40" + b"\x00" * 7 + b"+5" + b"12345",  # length with a sign
        b"1200" + b"\x40" + b"\x00" * 7 + b" 5" + b"12345",  # length with a space
        b"1200" + b"\x40" + b"\x00" * 7 + b"99" + b"1",  # length past the end
        b"1200" + b"\x20" + b"\x00" * 7 + b"12345",  # field 3 too short
        b"1200" + b"\x20" + b"\x00" * 7 + b"1234567",  # one byte too many
        b"0200" + b"\x20" + b"\x00" * 7 + b"123456",  # 1987 MTI on a 1993 link
        b"12a0" + b"\x00" * 8,  # MTI not digits
        b"1200" + b"\x00\x00\x00\x00\x00\x00\x10\x00" + b"\xff\xfe\xfd",  # field 52 short
    ],
)
def test_hand_made_bad_messages(data: bytes) -> None:
    with pytest.raises(DecodeError):
        decode(get_dialect("ifsf"), data)
    identify(get_dialect("ifsf"), data)


def test_non_bytes_input_is_a_decode_error() -> None:
    with pytest.raises(DecodeError):
        decode(get_dialect("ifsf"), "1200" + "\0" * 8)  # type: ignore[arg-type]


def test_decode_error_never_quotes_the_pan() -> None:
    pan = b"4761739001010010"
    broken = b"1200" + bytes.fromhex("4000000000000000") + b"16" + pan[:-1]
    with pytest.raises(DecodeError) as caught:
        decode(get_dialect("ifsf"), broken)
    assert caught.value.field == "2"
    assert pan[:-1].decode() not in str(caught.value)
    assert pan[:6].decode() not in repr(caught.value)
