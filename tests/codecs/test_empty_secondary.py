"""A secondary bitmap that flags no field: accepted and normalised on input, never sent.

Some ISO 8583 stacks always write the secondary bitmap (bit 1 set, eight zero
bytes) even when no field 65..128 is present. Such a message decodes as if the
secondary bitmap were absent, on both decode paths (pyiso8583 and the fast
path), in every dialect; `Message.raw` stays the bytes received, because the
sender's MAC covers them. `encode` sets bit 1 only when a field 65..128 is there.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from forecourt.codecs.dialect import (
    DIALECT_NAMES,
    Dialect,
    decode,
    encode,
    encode_with_mac,
    get_dialect,
    mac_input,
)
from forecourt.codecs.errors import EncodeError
from forecourt.codecs.message import Message
from hypothesis import given, settings
from hypothesis import strategies as st

from .bitmaps import with_empty_secondary, without_empty_secondary
from .strategies import message

IFSF = get_dialect("ifsf")
IFSF_HEX = get_dialect("ifsf", "hex")
ASCII87 = get_dialect("iso87ascii")
ASCII87_HEX = get_dialect("iso87ascii", "hex")
BCD87 = get_dialect("iso87bcd")
DIALECTS = [IFSF, IFSF_HEX, ASCII87, ASCII87_HEX, BCD87]
assert {d.name for d in DIALECTS} == set(DIALECT_NAMES)


def _ids(dialect: Dialect) -> str:
    return f"{dialect.name}-{dialect.bitmap}"


@contextmanager
def _pyiso8583_only(dialect: Dialect) -> Iterator[None]:
    """Switch the fast path off for a moment: the general decoder must agree."""
    fast = dialect.fast
    object.__setattr__(dialect, "fast", None)
    try:
        yield
    finally:
        object.__setattr__(dialect, "fast", fast)


def _both_paths(dialect: Dialect, raw: bytes) -> list[Message]:
    first = decode(dialect, raw)
    with _pyiso8583_only(dialect):
        second = decode(dialect, raw)
    return [first, second]


# --- known answers: bitmaps typed in, bit by bit ------------------------------

MAC = bytes.fromhex("A1B2C3D4E5F60718")
TRACK2 = b"4761739001010010=2512201"

# ifsf 1804 sign-on: fields 7 | 11 12 | 24 | 41
IFSF_1804_BODY = b"1121060000" + b"000001" + b"251121070000" + b"801" + b"POS00001"
IFSF_1804_FIELDS = {
    "7": "1121060000",
    "11": "000001",
    "12": "251121070000",
    "24": "801",
    "41": "POS00001",
}
# ifsf 1200: fields 3 4 7 | 11 | 24 | 35 | 41 | 64
IFSF_1200_BODY = (
    b"000000"
    + b"000000004217"
    + b"1121144041"
    + b"000123"
    + b"200"
    + b"24"
    + TRACK2
    + b"POS00001"
    + MAC
)
IFSF_1200_FIELDS = {
    "3": "000000",
    "4": "000000004217",
    "7": "1121144041",
    "11": "000123",
    "24": "200",
    "35": TRACK2.decode(),
    "41": "POS00001",
    "64": MAC.hex().upper(),
}
# iso87 0200: fields 3 4 7 | 11 | 41 | 64
ASCII87_0200_BODY = b"000000" + b"000000004217" + b"1121144041" + b"000123" + b"POS00001" + MAC
BCD87_0200_BODY = bytes.fromhex("000000 000000004217 1121144041 000123") + b"POS00001" + MAC
ISO87_0200_FIELDS = {
    "3": "000000",
    "4": "000000004217",
    "7": "1121144041",
    "11": "000123",
    "41": "POS00001",
    "64": MAC.hex().upper(),
}

# (dialect, frame with an all-zero secondary bitmap, the same frame without, fields)
KNOWN = [
    pytest.param(
        IFSF,
        b"1804" + bytes.fromhex("82 30 01 00 00 80 00 00") + bytes(8) + IFSF_1804_BODY,
        b"1804" + bytes.fromhex("02 30 01 00 00 80 00 00") + IFSF_1804_BODY,
        ("1804", IFSF_1804_FIELDS),
        id="ifsf-binary-1804",
    ),
    pytest.param(
        IFSF,
        b"1200" + bytes.fromhex("B2 20 01 00 20 80 00 01") + bytes(8) + IFSF_1200_BODY,
        b"1200" + bytes.fromhex("32 20 01 00 20 80 00 01") + IFSF_1200_BODY,
        ("1200", IFSF_1200_FIELDS),
        id="ifsf-binary-1200-mac",
    ),
    pytest.param(
        IFSF_HEX,
        b"1200" + b"B220010020800001" + b"0000000000000000" + IFSF_1200_BODY,
        b"1200" + b"3220010020800001" + IFSF_1200_BODY,
        ("1200", IFSF_1200_FIELDS),
        id="ifsf-hex-1200-mac",
    ),
    pytest.param(
        ASCII87,
        b"0200" + bytes.fromhex("B2 20 00 00 00 80 00 01") + bytes(8) + ASCII87_0200_BODY,
        b"0200" + bytes.fromhex("32 20 00 00 00 80 00 01") + ASCII87_0200_BODY,
        ("0200", ISO87_0200_FIELDS),
        id="iso87ascii-binary-0200",
    ),
    pytest.param(
        ASCII87_HEX,
        b"0200" + b"B220000000800001" + b"0000000000000000" + ASCII87_0200_BODY,
        b"0200" + b"3220000000800001" + ASCII87_0200_BODY,
        ("0200", ISO87_0200_FIELDS),
        id="iso87ascii-hex-0200",
    ),
    pytest.param(
        ASCII87_HEX,
        b"0200" + b"b220000000800001" + b"0000000000000000" + ASCII87_0200_BODY,
        b"0200" + b"3220000000800001" + ASCII87_0200_BODY,
        ("0200", ISO87_0200_FIELDS),
        id="iso87ascii-hex-lower-0200",
    ),
    pytest.param(
        BCD87,
        bytes.fromhex("0200 B2 20 00 00 00 80 00 01") + bytes(8) + BCD87_0200_BODY,
        bytes.fromhex("0200 32 20 00 00 00 80 00 01") + BCD87_0200_BODY,
        ("0200", ISO87_0200_FIELDS),
        id="iso87bcd-0200",
    ),
]


@pytest.mark.parametrize(("dialect", "with_empty", "without", "expected"), KNOWN)
def test_known_frame_with_an_empty_secondary_bitmap(
    dialect: Dialect, with_empty: bytes, without: bytes, expected: tuple[str, dict[str, str]]
) -> None:
    mti, fields = expected
    if dialect.fast is not None:  # the fast path answers itself rather than stepping aside
        assert dialect.fast.decode(with_empty) == (mti, fields)
    for msg in _both_paths(dialect, with_empty):
        assert (msg.mti, dict(msg.fields)) == (mti, fields)
        assert msg == decode(dialect, without)
        assert msg.raw == with_empty  # the bytes received, not a normalised copy
        assert mac_input(msg.raw) == with_empty[:-8]
    # Answered or forwarded, it goes out canonical: no secondary bitmap.
    assert encode(dialect, decode(dialect, with_empty)) == without
    assert without_empty_secondary(dialect, with_empty) == without


def _test_mac(data: bytes) -> bytes:
    """A stand-in 8-byte MAC (a real algorithm's output is as opaque to the codec)."""
    return hashlib.sha256(data).digest()[:8]


@pytest.mark.parametrize("dialect", DIALECTS, ids=_ids)
def test_the_mac_of_a_message_sent_with_an_empty_secondary_bitmap_still_checks(
    dialect: Dialect,
) -> None:
    # The sender's stack MACs the bytes it sends, empty secondary bitmap included.
    purchase = Message(dialect.version + "200", ISO87_0200_FIELDS)
    canonical = encode_with_mac(dialect, purchase, _test_mac)
    sent = with_empty_secondary(dialect, canonical)
    sent = sent[:-8] + _test_mac(sent[:-8])
    for msg in _both_paths(dialect, sent):
        assert bytes.fromhex(msg.fields["64"]) == _test_mac(mac_input(msg.raw))
        # Re-encoding drops the empty bitmap, so a MAC over it would not check.
        assert bytes.fromhex(msg.fields["64"]) != _test_mac(mac_input(encode(dialect, msg)))


def test_a_bitmap_alone_decodes_to_a_message_without_fields() -> None:
    for msg in _both_paths(IFSF, b"1800" + bytes.fromhex("80 00 00 00 00 00 00 00") + bytes(8)):
        assert (msg.mti, dict(msg.fields)) == ("1800", {})


# --- properties -----------------------------------------------------------------


def _primary_only(msg: Message) -> Message:
    return msg.with_fields({int(k): None for k in msg.fields if int(k) > 64})


@pytest.mark.parametrize("dialect", DIALECTS, ids=_ids)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_any_message_rewritten_with_an_empty_secondary_bitmap_decodes_the_same(
    dialect: Dialect, data: st.DataObject
) -> None:
    msg = _primary_only(data.draw(message(dialect)))
    canonical = encode(dialect, msg)
    sent = with_empty_secondary(dialect, canonical)
    assert len(sent) == len(canonical) + (16 if dialect.bitmap == "hex" else 8)
    for back in _both_paths(dialect, sent):
        assert back == msg
        assert back.raw == sent
        assert encode(dialect, back) == canonical


def _bitmaps(dialect: Dialect, raw: bytes) -> tuple[int, bytes | None]:
    """(primary bitmap, secondary bitmap as sent or None), read straight off the bytes."""
    at = 2 if dialect.name == "iso87bcd" else 4
    size = 16 if dialect.bitmap == "hex" else 8
    chunk = raw[at : at + size]
    primary = int(chunk, 16) if dialect.bitmap == "hex" else int.from_bytes(chunk, "big")
    secondary = raw[at + size : at + 2 * size] if primary >> 63 else None
    return primary, secondary


@pytest.mark.parametrize("dialect", DIALECTS, ids=_ids)
@settings(max_examples=80, deadline=None)
@given(data=st.data())
def test_encode_never_emits_an_empty_secondary_bitmap(
    dialect: Dialect, data: st.DataObject
) -> None:
    msg = data.draw(message(dialect))
    high = any(int(k) > 64 for k in msg.fields)
    # encode_with_mac puts the MAC in 64 unless a field 65..127 needs the secondary bitmap.
    high_with_mac = any(int(k) > 64 for k in msg.fields if k not in ("64", "128"))
    cases = (
        (encode(dialect, msg), high),
        (encode_with_mac(dialect, msg, _test_mac), high_with_mac),
    )
    for raw, flagged in cases:
        primary, secondary = _bitmaps(dialect, raw)
        assert bool(primary >> 63) is flagged
        if secondary is not None:
            assert secondary.strip(b"0" if dialect.bitmap == "hex" else b"\0")


@pytest.mark.parametrize("dialect", DIALECTS, ids=_ids)
def test_encode_sets_bit_1_only_for_fields_65_to_128(dialect: Dialect) -> None:
    v = dialect.version
    low = encode(dialect, Message(v + "800", {"11": "000001"}))
    assert _bitmaps(dialect, low) == (1 << (64 - 11), None)
    high = encode(dialect, Message(v + "800", {"11": "000001", "128": "00" * 8}))
    primary, secondary = _bitmaps(dialect, high)
    assert primary == 1 << 63 | 1 << (64 - 11)
    assert secondary in (b"0000000000000001", bytes.fromhex("0000000000000001"))


@pytest.mark.parametrize("dialect", DIALECTS, ids=_ids)
def test_bit_1_cannot_be_asked_for(dialect: Dialect) -> None:
    # "1" is the secondary bitmap, not a data element: a caller cannot force one out.
    with pytest.raises(EncodeError) as caught:
        encode(dialect, Message(dialect.version + "800", {"1": "0" * 16, "11": "000001"}))
    assert caught.value.field == "1"
