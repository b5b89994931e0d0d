"""Field 54 additional amounts: known layout, round trip, refusal of malformed sets."""

from __future__ import annotations

import pytest
from forecourt.codecs.amounts import AdditionalAmount, decode_field54, encode_field54
from forecourt.codecs.errors import DecodeError
from hypothesis import given
from hypothesis import strategies as st


def test_known_layout() -> None:
    # account 00, available balance 02, EUR 978, credit 123.45
    assert encode_field54([AdditionalAmount("00", "02", "978", 12345)]) == "0002978C000000012345"
    assert decode_field54("1001840D000000000500") == (AdditionalAmount("10", "01", "840", -500),)


amounts = st.builds(
    AdditionalAmount,
    st.sampled_from(["00", "10", "20"]),
    st.sampled_from(["01", "02"]),
    st.sampled_from(["978", "840", "156"]),
    st.integers(-(10**12) + 1, 10**12 - 1),
)


@given(st.lists(amounts, min_size=1, max_size=6))
def test_round_trip(values: list[AdditionalAmount]) -> None:
    assert decode_field54(encode_field54(values)) == tuple(values)


@pytest.mark.parametrize(
    "value", ["", "0002978C00000001234", "0002978X000000012345", "00029 8C000000012345", "A" * 140]
)
def test_malformed_refused(value: str) -> None:
    with pytest.raises(DecodeError) as info:
        decode_field54(value)
    assert info.value.field == "54"
