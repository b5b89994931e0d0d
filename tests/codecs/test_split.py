"""The split group on the wire: ifsf field 48-7 + 48-61, 1987 field 62 tagged SG."""

from __future__ import annotations

import pytest
from forecourt.codecs.amounts import AMOUNT_DUE
from forecourt.codecs.dialect import decode, encode, get_dialect
from forecourt.codecs.errors import DecodeError
from forecourt.codecs.family import Family
from forecourt.codecs.field48 import decode_field48, encode_field48
from forecourt.codecs.message import Message
from forecourt.codecs.split import SplitGroup, split_group_of, with_split_group
from hypothesis import given
from hypothesis import strategies as st

PURCHASE = {"2": "4761739001010010", "3": "000000", "4": "000000002000", "11": "000001"}
DIALECTS = [("ifsf", "1200"), ("iso87ascii", "0200"), ("iso87bcd", "0200")]


def test_amount_due_is_type_04() -> None:
    assert AMOUNT_DUE == "04"


@pytest.mark.parametrize(("dialect", "mti"), DIALECTS)
@given(
    group_id=st.integers(0, 10**9 - 1).map(lambda n: f"{n:09d}"),
    total=st.integers(1, 10**12 - 1),
)
def test_the_group_survives_the_wire(dialect: str, mti: str, group_id: str, total: int) -> None:
    d = get_dialect(dialect)
    message = with_split_group(Message(mti, dict(PURCHASE)), SplitGroup(group_id, total), d.family)
    back = decode(d, encode(d, message))
    assert split_group_of(back, d.family) == SplitGroup(group_id, total)


def test_ifsf_other_sub_elements_are_kept() -> None:
    message = Message("1200", {**PURCHASE, "48": encode_field48({3: "EN", 38: "1"})})
    carried = with_split_group(message, SplitGroup("000000123", 5000), Family.ISO1993)
    assert decode_field48(carried.fields["48"]) == {
        3: "EN",
        7: "000000123",
        38: "1",
        61: "000000005000",
    }


def test_no_group_is_none() -> None:
    plain = Message("1200", {**PURCHASE, "48": encode_field48({3: "EN"})})
    assert split_group_of(plain, Family.ISO1993) is None
    assert split_group_of(Message("0200", PURCHASE), Family.ISO1987) is None
    # a 1987 field 62 used for something else is not a split group
    other = Message("0200", {**PURCHASE, "62": "INVOICE 4711"})
    assert split_group_of(other, Family.ISO1987) is None


@pytest.mark.parametrize(
    ("family", "fields", "field"),
    [
        (Family.ISO1993, {"48": encode_field48({7: "000000001"})}, "48"),  # no total
        (Family.ISO1993, {"48": encode_field48({61: "000000001000"})}, "48"),  # no id
        (Family.ISO1993, {"48": encode_field48({7: "000000001", 61: "000000000000"})}, "48"),
        (Family.ISO1987, {"62": "SG0000000010000000010"}, "62"),  # too short
        (Family.ISO1987, {"62": "SG00000000100000000010X"}, "62"),  # not digits
    ],
)
def test_a_malformed_group_is_a_decode_error_naming_its_field(
    family: Family, fields: dict[str, str], field: str
) -> None:
    with pytest.raises(DecodeError) as raised:
        split_group_of(Message("1200", {**PURCHASE, **fields}), family)
    assert raised.value.field == field


def test_a_group_is_9_digits_and_a_positive_total() -> None:
    for group_id, total in (("12345678", 1), ("00000000A", 1), ("000000001", 0)):
        with pytest.raises(DecodeError):
            SplitGroup(group_id, total)
