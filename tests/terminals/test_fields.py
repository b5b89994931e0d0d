"""48-15..18 and the device status digits: properties over every value they may hold."""

from __future__ import annotations

import pytest
from forecourt.codecs.errors import CodecError
from forecourt.codecs.field48 import decode_field48, encode_field48
from forecourt.switch.terminals.devices import DEVICES, DeviceStatusError, describe, parse_status
from forecourt.switch.terminals.registration import (
    CODE_ALPHABET,
    CODE_LENGTH,
    new_activation_code,
    normalise_code,
)
from hypothesis import given
from hypothesis import strategies as st

_TEXT = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1)


@given(
    operator=_TEXT.filter(lambda t: len(t) <= 12),
    serial=_TEXT.filter(lambda t: len(t) <= 32),
    code=st.text(st.sampled_from(CODE_ALPHABET), min_size=16, max_size=16),
    status=st.text(st.sampled_from("0129"), min_size=4, max_size=4),
)
def test_the_terminal_sub_elements_round_trip(
    operator: str, serial: str, code: str, status: str
) -> None:
    elements: dict[int, str | bytes] = {15: operator, 16: serial, 17: code, 18: status}
    assert decode_field48(encode_field48(elements)) == elements


def test_an_operator_id_longer_than_12_does_not_encode() -> None:
    with pytest.raises(CodecError):
        encode_field48({15: "C" * 13})


@given(st.text(st.sampled_from("0129"), min_size=4, max_size=4))
def test_every_valid_status_reads_per_device(status: str) -> None:
    states = parse_status(status)
    assert list(states) == list(DEVICES)
    assert "".join(str(v) for v in states.values()) == status
    assert "unreadable" not in describe(status)


@given(st.text(max_size=6).filter(lambda t: len(t) != 4 or any(c not in "0129" for c in t)))
def test_anything_else_is_refused(status: str) -> None:
    with pytest.raises(DeviceStatusError):
        parse_status(status)
    assert describe(status).startswith("unreadable")


def test_a_new_code_is_16_of_the_alphabet_and_reads_back_as_typed() -> None:
    codes = {new_activation_code() for _ in range(200)}
    assert len(codes) == 200  # 80 bits: no two alike
    for code in codes:
        assert len(code) == CODE_LENGTH and set(code) <= set(CODE_ALPHABET)
        typed = "-".join(code[i : i + 4] for i in range(0, 16, 4)).lower()
        assert normalise_code(typed) == code
