"""Framing: chunked decoding equals whole decoding; the buffer stays bounded."""

from __future__ import annotations

import pytest
from forecourt.codecs.errors import DecodeError, EncodeError, FrameTooLarge
from forecourt.codecs.framing import Frame, FrameDecoder, Framing, encode_frame, reply_tpdu
from hypothesis import given, settings
from hypothesis import strategies as st

TPDU = bytes.fromhex("6000010002")
FRAMINGS = [
    Framing("2b"),
    Framing("4a"),
    Framing("2b", tpdu=True),
    Framing("4a", tpdu=True),
]


def _ids(framing: Framing) -> str:
    return f"{framing.header}{'-tpdu' if framing.tpdu else ''}"


def test_two_byte_header_by_hand() -> None:
    wire = encode_frame(Framing("2b"), b"0800abc")
    assert wire == b"\x00\x07" + b"0800abc"
    assert FrameDecoder(Framing("2b")).feed(wire) == [Frame(b"0800abc", None)]


def test_ascii_header_and_tpdu_by_hand() -> None:
    wire = encode_frame(Framing("4a", tpdu=True), b"\x08\x00\x00", TPDU)
    assert wire == b"0008" + b"\x60\x00\x01\x00\x02" + b"\x08\x00\x00"
    frames = FrameDecoder(Framing("4a", tpdu=True)).feed(wire)
    assert frames == [Frame(b"\x08\x00\x00", TPDU)]


def test_reply_tpdu_swaps_source_and_destination() -> None:
    assert reply_tpdu(bytes.fromhex("6000010002")) == bytes.fromhex("6000020001")
    assert reply_tpdu(reply_tpdu(TPDU)) == TPDU
    with pytest.raises(EncodeError):
        reply_tpdu(b"\x60\x00")


payloads = st.lists(st.binary(min_size=1, max_size=300), min_size=1, max_size=6)


@pytest.mark.parametrize("framing", FRAMINGS, ids=_ids)
@settings(max_examples=60, deadline=None)
@given(messages=payloads, data=st.data())
def test_chunked_stream_decodes_like_the_whole(
    framing: Framing, messages: list[bytes], data: st.DataObject
) -> None:
    tpdu = TPDU if framing.tpdu else None
    stream = b"".join(encode_frame(framing, m, tpdu) for m in messages)
    whole = FrameDecoder(framing).feed(stream)
    assert whole == [Frame(m, tpdu) for m in messages]

    cuts = sorted(data.draw(st.sets(st.integers(1, max(len(stream) - 1, 1)), max_size=20)))
    decoder = FrameDecoder(framing)
    got: list[Frame] = []
    start = 0
    for end in [*cuts, len(stream)]:
        got += decoder.feed(stream[start:end])
        start = end
        assert decoder.buffered <= 4 + framing.max_frame
    assert got == whole
    assert decoder.buffered == 0


@pytest.mark.parametrize("framing", FRAMINGS, ids=_ids)
def test_one_byte_at_a_time(framing: Framing) -> None:
    tpdu = TPDU if framing.tpdu else None
    messages = [b"1200" + bytes(range(40)), b"1804", b"x" * 500]
    stream = b"".join(encode_frame(framing, m, tpdu) for m in messages)
    decoder = FrameDecoder(framing)
    got = [frame for i in range(len(stream)) for frame in decoder.feed(stream[i : i + 1])]
    assert got == [Frame(m, tpdu) for m in messages]


@pytest.mark.parametrize("header", ["2b", "4a"])
def test_too_large_raises_from_the_header_before_the_body(header: str) -> None:
    framing = Framing(header, max_frame=100)
    decoder = FrameDecoder(framing)
    wire = b"\x00\x65" if header == "2b" else b"0101"
    with pytest.raises(FrameTooLarge) as caught:
        decoder.feed(wire[:1])
        decoder.feed(wire[1:])  # the header is complete: no body byte is needed
    assert (caught.value.length, caught.value.maximum) == (101, 100)
    assert decoder.buffered == 0


def test_buffer_never_exceeds_one_frame() -> None:
    framing = Framing("2b", max_frame=1000)
    decoder = FrameDecoder(framing)
    decoder.feed(b"\x03\xe8" + b"a" * 999)  # one byte short of a full frame
    assert decoder.buffered == 1001
    assert decoder.feed(b"a") == [Frame(b"a" * 1000, None)]
    assert decoder.buffered == 0
    with pytest.raises(FrameTooLarge):
        decoder.feed(b"\xff\xff")


def test_exactly_the_maximum_is_accepted() -> None:
    framing = Framing("4a", max_frame=9999)
    assert FrameDecoder(framing).feed(b"9999" + b"z" * 9999) == [Frame(b"z" * 9999, None)]


def test_zero_length_is_a_keep_alive() -> None:
    decoder = FrameDecoder(Framing("2b"))
    assert decoder.feed(b"\x00\x00\x00\x00\x00\x02ok\x00\x00") == [Frame(b"ok", None)]


@pytest.mark.parametrize("header", [b"00a5", b" 123", b"+123", b"-001", b"1_00"])
def test_ascii_header_must_be_four_digits(header: bytes) -> None:
    with pytest.raises(DecodeError) as caught:
        FrameDecoder(Framing("4a")).feed(header + b"x" * 200)
    assert caught.value.field == "frame"


def test_frame_shorter_than_its_tpdu() -> None:
    with pytest.raises(DecodeError):
        FrameDecoder(Framing("2b", tpdu=True)).feed(b"\x00\x03\x60\x00\x01")


def test_no_header_takes_each_chunk_as_a_frame() -> None:
    decoder = FrameDecoder(Framing("none", max_frame=10))
    assert decoder.feed(b"0800") == [Frame(b"0800", None)]
    assert decoder.feed(b"") == []
    with pytest.raises(FrameTooLarge):
        decoder.feed(b"x" * 11)


def test_encode_frame_checks() -> None:
    with pytest.raises(EncodeError):
        encode_frame(Framing("2b", tpdu=True), b"x")  # TPDU missing
    with pytest.raises(EncodeError):
        encode_frame(Framing("2b"), b"x", TPDU)  # TPDU not expected
    with pytest.raises(FrameTooLarge):
        encode_frame(Framing("2b", max_frame=4), b"12345")
    with pytest.raises(FrameTooLarge):
        encode_frame(Framing("4a", max_frame=20000), b"x" * 10000)
    assert encode_frame(Framing("none"), b"abc") == b"abc"


def test_framing_validates_its_settings() -> None:
    with pytest.raises(ValueError):
        Framing("3b")
    with pytest.raises(ValueError):
        Framing("2b", max_frame=0)
