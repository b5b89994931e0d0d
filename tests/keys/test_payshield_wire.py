"""The payShield codec: frames and fields as the host command reference lays them
out, the response-code rule, and replies that are not the answer refused."""

from __future__ import annotations

import pytest
from forecourt.keys.crypto import Algorithm
from forecourt.keys.payshield import commands as cmd
from forecourt.keys.payshield.wire import (
    FieldError,
    Fields,
    FrameBuffer,
    MalformedReply,
    WireError,
    command_payload,
    frame,
    parse_reply,
    parse_request,
    reply_payload,
    response_code,
)
from hypothesis import given
from hypothesis import strategies as st

BLOCK = "S" + "D0112P0TB00E0000" + "A" * 96  # a 112-character TR-31 block behind 'S'


def test_nc_frame_is_length_header_command() -> None:
    # the manual's diagnostics request: header "0000", command NC, no fields
    assert frame(command_payload(b"0000", "NC", b"")) == b"\x00\x060000NC"


def test_b2_echo_request_carries_its_length_in_4h() -> None:
    fields = cmd.b2_request(b"PING")
    assert frame(command_payload(b"1234", "B2", fields)) == b"\x00\x0e1234B20004PING"


def test_a0_key_block_request_fields() -> None:
    attributes = cmd.KeyBlockAttributes("P0", Algorithm.TDES2, "B", "E")
    assert cmd.a0_request(attributes) == b"0FFFS#P0T2B00E00"
    under = cmd.a0_request(attributes, zmk=BLOCK)
    assert under == b"1FFFS;0" + BLOCK.encode() + b"S#P0T2B00E00"


def test_m6_request_fields_in_order() -> None:
    fields = cmd.m6_request(cmd.MAC_ALGORITHM_RETAIL, BLOCK, b"\x01\x02\x03")
    # mode 0, input binary 0, MAC size 1 (16H), algorithm 3, padding 1, key type FFF
    assert fields == b"00131FFF" + BLOCK.encode() + b"0003\x01\x02\x03"
    cmac = cmd.m6_request(cmd.MAC_ALGORITHM_CMAC, BLOCK, b"")
    assert cmac == b"00160FFF" + BLOCK.encode() + b"0000"


def test_ca_request_account_number_is_12_rightmost_without_check_digit() -> None:
    fields = cmd.ca_request(
        BLOCK, BLOCK, bytes.fromhex("0123456789ABCDEF"), "01", "01", "4761739001010119"
    )
    # max PIN length 12, the block, formats 01 and 01, 12 digits of 476173900101011(9)
    assert fields.endswith(b"120123456789ABCDEF0101173900101011")
    assert fields == (BLOCK + BLOCK).encode() + b"120123456789ABCDEF0101173900101011"
    assert cmd.account_field("4761739001010119", ("01",)) == "173900101011"
    assert cmd.account_field("4761730119", ("01",)) == "000476173011"
    assert cmd.account_field("4761739001010119", ("48", "01")) == "164761739001010119"
    with pytest.raises(FieldError):
        cmd.account_field("47617390010101AB", ("01",))


@pytest.mark.parametrize(
    ("command", "reply"),
    [
        ("A0", "A1"),
        ("A6", "A7"),
        ("A8", "A9"),
        ("BU", "BV"),
        ("CA", "CB"),
        ("CC", "CD"),
        ("G0", "G1"),
        ("M6", "M7"),
        ("M8", "M9"),
        ("NC", "ND"),
        ("B2", "B3"),
    ],
)
def test_reply_code_is_the_second_character_one_on(command: str, reply: str) -> None:
    assert response_code(command) == reply


def test_reply_code_refuses_what_has_no_successor() -> None:
    for bad in ("A9", "AZ", "A", "A0B", "A-"):
        with pytest.raises(WireError):
            response_code(bad)


def test_a_reply_round_trips_through_request_and_reply() -> None:
    request = parse_request(b"0042NC", 4)
    payload = reply_payload(request, "00", b"0123456789ABCDEF1500-FCSM")
    assert payload == b"0042ND000123456789ABCDEF1500-FCSM"
    reply = parse_reply(payload, b"0042", "NC")
    assert reply.ok and cmd.nd_reply(reply.fields) == cmd.Diagnostics(
        "0123456789ABCDEF", "1500-FCSM"
    )


@pytest.mark.parametrize(
    "payload",
    [
        b"0043ND00",  # another request's header
        b"0042NC00",  # the command code echoed, not the response code
        b"0042ND",  # no error code
        b"0042ND0",  # half an error code
        b"0042ND\x00\x01",  # an error code that is not two characters
        b"00",  # shorter than the header
    ],
)
def test_malformed_replies_are_refused(payload: bytes) -> None:
    with pytest.raises(MalformedReply):
        parse_reply(payload, b"0042", "NC")


def test_reply_fields_that_do_not_parse_are_refused() -> None:
    with pytest.raises(FieldError):
        cmd.nd_reply(b"0123456789ABCDEF")  # no firmware number
    with pytest.raises(FieldError):
        cmd.m7_reply(b"0123456789ABCDEG")  # not hex
    with pytest.raises(FieldError):
        cmd.a7_reply(BLOCK.encode() + b"ABCDEF00")  # data after the last field
    with pytest.raises(FieldError):
        cmd.pin_reply(b"04" + b"A" * 20 + b"01", "CB")  # a PIN block of neither width


def test_key_block_field_is_self_delimiting() -> None:
    f = Fields((BLOCK + BLOCK + "12").encode())
    assert f.key_block("a") == BLOCK
    assert f.key_block("b") == BLOCK
    assert f.numeric(2, "c") == "12"
    f.end("x")
    for bad in ("U" + BLOCK[1:], "SD01X2", "SD0112P0"):
        with pytest.raises(FieldError):
            Fields(bad.encode()).key_block("k")


@given(st.lists(st.binary(max_size=300), min_size=1, max_size=8), st.integers(1, 17))
def test_frames_come_back_whole_however_the_stream_splits_them(
    payloads: list[bytes], chunk: int
) -> None:
    stream = b"".join(frame(p) for p in payloads)
    buffer, out = FrameBuffer(), []
    for i in range(0, len(stream), chunk):
        out += buffer.feed(stream[i : i + chunk])
    assert out == payloads and buffer.pending == 0
