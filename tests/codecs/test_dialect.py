"""Dialect selection, MAC placement, identify, content checks, encode errors."""

from __future__ import annotations

import pytest
from forecourt.codecs.dialect import (
    check_content,
    decode,
    encode,
    encode_with_mac,
    get_dialect,
    identify,
    mac_input,
)
from forecourt.codecs.errors import DecodeError, EncodeError, UnknownDialect
from forecourt.codecs.message import Message

IFSF = get_dialect("ifsf")
BCD87 = get_dialect("iso87bcd")

PURCHASE = Message(
    "1200",
    {"3": "000000", "4": "000000004217", "11": "000123", "41": "POS00001", "35": "476=1"},
)


def test_get_dialect() -> None:
    assert get_dialect("ifsf") is get_dialect("ifsf")  # cached: cheap per message
    assert get_dialect("ifsf").family == "1993"
    assert get_dialect("iso87ascii", "hex").spec["p"]["data_enc"] == "ascii"
    for name, bitmap in [("iso8583", "binary"), ("ifsf", "octal"), ("iso87bcd", "hex")]:
        with pytest.raises(UnknownDialect):
            get_dialect(name, bitmap)


def test_iso87_fields_22_24_25_are_the_1987_formats() -> None:
    layout = get_dialect("iso87ascii").layout
    assert [layout[n].notation for n in (22, 24, 25, 70, 90)] == ["n3", "n3", "n2", "n3", "n42"]
    ifsf = IFSF.layout
    assert [ifsf[n].notation for n in (22, 24, 25, 56, 96)] == [
        "an12",
        "n3",
        "n4",
        "LL n..35",
        "LLL b..999",
    ]


def test_hex_bitmap_by_hand() -> None:
    hex87 = get_dialect("iso87ascii", "hex")
    # fields 3 | 11 | - | - | - | 41 42: bitmap as 16 ASCII hex digits
    body = b"000000" + b"000001" + b"POS00001" + b"000000123456789"
    raw = b"0800" + b"2020000000C00000" + body
    msg = decode(hex87, raw)
    assert msg.fields == {"3": "000000", "11": "000001", "41": "POS00001", "42": "000000123456789"}
    assert encode(hex87, msg) == raw
    assert decode(hex87, b"0800" + b"2020000000c00000" + body) == msg  # lower case accepted
    with pytest.raises(DecodeError):
        decode(hex87, b"0800" + b"20 0000000C00000" + body)  # fromhex would skip the space


def test_encode_with_mac_in_64() -> None:
    seen: list[bytes] = []

    def mac(data: bytes) -> bytes:
        seen.append(data)
        return b"\x11" * 8

    raw = encode_with_mac(IFSF, PURCHASE.with_fields({128: "00" * 8}), mac)
    msg = decode(IFSF, raw)
    assert msg.fields["64"] == "11" * 8 and "128" not in msg.fields
    assert seen == [mac_input(raw)]
    assert raw.endswith(b"\x11" * 8)


def test_encode_with_mac_in_128_with_a_secondary_bitmap() -> None:
    msg = PURCHASE.with_fields({96: "ABCD", 64: "00" * 8})
    raw = encode_with_mac(IFSF, msg, lambda data: bytes(range(8)))
    back = decode(IFSF, raw)
    assert back.fields["128"] == "0001020304050607" and "64" not in back.fields
    assert mac_input(raw) == raw[:-8]


def test_encode_with_mac_rejects_a_short_mac() -> None:
    with pytest.raises(EncodeError):
        encode_with_mac(IFSF, PURCHASE, lambda data: b"\x00" * 4)


def test_identify_a_message_that_does_not_decode() -> None:
    raw = encode(IFSF, PURCHASE)
    broken = raw[:-3]  # field 41 cut short, 11 intact
    with pytest.raises(DecodeError):
        decode(IFSF, broken)
    assert identify(IFSF, broken) == ("1200", None, "000123")
    assert identify(IFSF, raw) == ("1200", "POS00001", "000123")
    assert identify(IFSF, b"") == (None, None, None)
    assert identify(IFSF, b"12") == (None, None, None)
    assert identify(IFSF, b"1200\x00") == ("1200", None, None)
    assert identify(IFSF, "garbage") == (None, None, None)  # type: ignore[arg-type]


def test_identify_bcd() -> None:
    raw = encode(BCD87, Message("0200", {"3": "000000", "11": "000042", "41": "TERM0001"}))
    assert identify(BCD87, raw[:-1]) == ("0200", None, "000042")


def test_check_content() -> None:
    check_content(IFSF, PURCHASE.with_fields({35: "4761739001010010=2512"}))
    with pytest.raises(DecodeError) as caught:
        check_content(IFSF, PURCHASE.with_fields({4: "00000000421A"}))
    assert caught.value.field == "4"
    with pytest.raises(DecodeError):
        check_content(IFSF, PURCHASE.with_fields({52: "0123456789abcdeg"}))
    with pytest.raises(DecodeError):
        check_content(IFSF, Message("1200", {"65": "x"}))


@pytest.mark.parametrize(
    ("msg", "field"),
    [
        (Message("0200", {"3": "000000"}), "mti"),  # 1987 MTI on the 1993 dialect
        (Message("12000", {}), "mti"),
        (Message("1200", {"1": "00"}), "1"),  # bitmaps are the codec's business
        (Message("1200", {"65": "00"}), "65"),
        (Message("1200", {"129": "x"}), "129"),
        (Message("1200", {"three": "x"}), "three"),
        (Message("1200", {"3": "12345"}), "3"),
        (Message("1200", {"2": "1" * 20}), "2"),
        (Message("1200", {"52": "XYZ"}), "52"),
        (Message("1200", {"43": "\u20ac"}), "43"),  # not ISO 8859-1
        (Message("1200", {"3": 123456}), "3"),  # type: ignore[dict-item]
    ],
)
def test_encode_errors(msg: Message, field: str | None) -> None:
    with pytest.raises(EncodeError) as caught:
        encode(IFSF, msg)
    assert caught.value.field == field


def test_decode_accepts_bytearray_and_memoryview() -> None:
    raw = encode(IFSF, PURCHASE)
    assert decode(IFSF, bytearray(raw)) == PURCHASE
    assert decode(IFSF, memoryview(raw)).raw == raw
