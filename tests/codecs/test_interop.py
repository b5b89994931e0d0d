"""iso87ascii against a plain ISO 8583:1987 client: ASCII MTI, binary bitmap,
ASCII LL/LLL prefixes and numerics, binary fields raw, the message behind a
2-byte binary length. Nothing forecourt-specific may be needed to talk to it."""

from __future__ import annotations

import iso8583
from forecourt.codecs.dialect import decode, encode, get_dialect
from forecourt.codecs.framing import FrameDecoder, Framing, encode_frame
from forecourt.codecs.message import Message
from hypothesis import given, settings
from hypothesis import strategies as st
from iso8583.specs import default as pyiso8583_default_1987

from .strategies import field_value

ASCII87 = get_dialect("iso87ascii")

# A 0200 as a generic 1987 terminal sends it, framed, typed in by hand:
# fields 2 3 4 7 11 12 13 14 18 22 25 37 41 42 43 49 52 55 64.
ICC = bytes.fromhex("9F2608C2C12B098F3DA6E39F2701809F100706010A03A00000")
STANDARD_0200 = (
    b"0200"
    # 2 3 4 | 7 | 11 12 13 14 | 18 | 22 | 25 | 37 | 41 42 43 | 49 52 | 55 | 64
    + bytes.fromhex("72 3C 44 80 08 E0 92 01")
    + b"16"
    + b"4761739001010010"  # 2 LL n..19
    + b"000000"  # 3
    + b"000000004217"  # 4
    + b"1121144041"  # 7
    + b"000123"  # 11
    + b"154041"  # 12
    + b"1121"  # 13
    + b"2512"  # 14 YYMM
    + b"5542"  # 18 merchant type: automated fuel dispenser
    + b"051"  # 22
    + b"00"  # 25
    + b"532515000123"  # 37 retrieval reference number
    + b"OPT00007"  # 41
    + b"000000123456789"  # 42
    + b"FORECOURT STATION 7    GUNDERSHEIM    DE"  # 43 ans40
    + b"978"  # 49
    + bytes.fromhex("0123456789ABCDEF")  # 52
    + b"025"
    + ICC  # 55 LLL b, ASCII length counting bytes
    + bytes.fromhex("A1B2C3D4E5F60718")  # 64
)
FRAMED = len(STANDARD_0200).to_bytes(2, "big") + STANDARD_0200


def test_decodes_a_standard_1987_message() -> None:
    (frame,) = FrameDecoder(Framing("2b")).feed(FRAMED)
    msg = decode(ASCII87, frame.payload)
    assert msg.mti == "0200"
    assert msg.pan == "4761739001010010"
    assert msg.fields["14"] == "2512"
    assert msg.fields["18"] == "5542"
    assert msg.fields["22"] == "051"
    assert msg.fields["25"] == "00"
    assert msg.fields["43"].endswith("DE")
    assert msg.fields["55"] == ICC.hex().upper()
    assert msg.fields["64"] == "A1B2C3D4E5F60718"
    # and answers in kind: the same bytes come back out, framed the same way
    assert encode_frame(Framing("2b"), encode(ASCII87, msg)) == FRAMED


def test_agrees_with_pyiso8583s_own_1987_spec() -> None:
    theirs, _ = iso8583.decode(STANDARD_0200, pyiso8583_default_1987)
    ours = decode(ASCII87, STANDARD_0200)
    assert {k: v for k, v in theirs.items() if k.isdigit()} == dict(ours.fields)


_COMMON = [2, 3, 4, 7, 11, 12, 13, 14, 18, 22, 23, 24, 25, 32, 35, 37, 38, 39, 41, 42, 43]
_COMMON += [44, 45, 48, 49, 52, 53, 55, 60, 61, 62, 63, 64, 70, 90, 95, 96, 97, 102, 128]


@settings(max_examples=40, deadline=None)
@given(data=st.data(), numbers=st.sets(st.sampled_from(_COMMON), min_size=1, max_size=15))
def test_interoperates_with_an_independent_1987_spec(
    data: st.DataObject, numbers: set[int]
) -> None:
    # pyiso8583's bundled ASCII/binary 1987 spec was written independently of
    # ours: what it encodes we decode identically, and the other way round.
    fields = {
        str(n): data.draw(field_value(ASCII87, n, cap=30, ascii_text=True)) for n in sorted(numbers)
    }
    theirs, _ = iso8583.encode({"t": "0200", **fields}, pyiso8583_default_1987)
    assert decode(ASCII87, bytes(theirs)) == Message("0200", fields)
    assert encode(ASCII87, Message("0200", fields)) == bytes(theirs)
