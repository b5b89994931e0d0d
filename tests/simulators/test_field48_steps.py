"""Field 48 sub-elements by number in certification scripts (simulators/field48_steps.py)."""

from __future__ import annotations

import pytest
from forecourt.codecs.field48 import decode_field48, encode_field48
from forecourt.codecs.message import Message
from forecourt.simulators._toml import SimConfigError, Table
from forecourt.simulators.field48_steps import (
    check_field48,
    parse_field48,
    parse_field48_present,
    with_field48,
)


def test_a_send_step_merges_sub_elements_into_what_field_48_already_holds() -> None:
    message = Message("1200", {"48": encode_field48({7: "000000001"})})
    sent = with_field48(message, parse_field48(Table({"field48": {"4": "0000000042"}}, "")))
    assert decode_field48(sent.fields["48"]) == {4: "0000000042", 7: "000000001"}


def test_no_sub_elements_leave_the_message_as_it_was() -> None:
    message = Message("1200", {"3": "000000"})
    assert with_field48(message, {}) is message


def test_an_answer_missing_a_wanted_sub_element_is_named() -> None:
    fields = {"48": encode_field48({4: "0000000042"})}
    assert check_field48(fields, {4: "0000000042"}, ()) is None
    assert check_field48(fields, {4: "0000000043"}, ()) == (
        "field 48-4 is '0000000042', expected '0000000043'"
    )
    assert check_field48(fields, {}, (5,)) == "field 48-5 is absent, expected present"
    assert check_field48({}, {4: "0000000042"}, ()) == (
        "field 48-4 is absent, expected '0000000042'"
    )


def test_binary_sub_elements_are_given_in_hex() -> None:
    sent = with_field48(Message("1200", {}), {40: "0A0B0C0D"})
    assert decode_field48(sent.fields["48"]) == {40: bytes.fromhex("0A0B0C0D")}
    assert check_field48(sent.fields, {40: "0a0b0c0d".upper()}, ()) is None


@pytest.mark.parametrize(
    ("table", "why"),
    [
        ({"field48": {"1": "x"}}, "field48.1"),
        ({"field48": {"4": 42}}, "field48.4"),
        ({"field48": "4"}, "field48"),
    ],
)
def test_a_typo_is_refused_when_the_script_is_read(table: dict[str, object], why: str) -> None:
    with pytest.raises(SimConfigError, match=why):
        parse_field48(Table(table, ""))


def test_field48_present_names_known_sub_elements_only() -> None:
    assert parse_field48_present(Table({"field48_present": ["4", "5"]}, "")) == (4, 5)
    with pytest.raises(SimConfigError, match="field48_present"):
        parse_field48_present(Table({"field48_present": ["99"]}, ""))
