"""Sub-structure helpers: 30, 48, 56, 63, 90; masking."""

from __future__ import annotations

from decimal import Decimal

import pytest
from forecourt.codecs.errors import DecodeError, EncodeError
from forecourt.codecs.fields import (
    SUBELEMENTS_48,
    OriginalAmounts,
    OriginalData,
    OriginalElements,
    ProductData,
    ProductItem,
    decode_field48,
    encode_field48,
    mask_pan,
    mask_track2,
)
from hypothesis import given, settings
from hypothesis import strategies as st

digits = st.text(alphabet="0123456789", min_size=1, max_size=1).map(str)


def _digits(n: int) -> st.SearchStrategy[str]:
    return st.text(alphabet="0123456789", min_size=n, max_size=n)


def test_mask_pan() -> None:
    assert mask_pan("4761739001010010") == "476173******0010"
    assert mask_pan("4761739001010010123") == "476173*********0123"
    assert mask_pan("12345678") == "****5678"
    assert mask_pan("123") == "***"


def test_mask_track2() -> None:
    masked = mask_track2("4761739001010010=25122011000012300000")
    assert masked.startswith("476173******0010=")
    assert "2512" not in masked
    assert mask_track2("4761739001010010D251220").startswith("476173******0010D")


# -- 56 ----------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(
    st.builds(
        OriginalData,
        _digits(4),
        _digits(6),
        _digits(12),
        st.none() | st.integers(1, 11).flatmap(_digits),
    )
)
def test_original_data_round_trip(value: OriginalData) -> None:
    text = value.encode()
    assert len(text) <= 35
    assert OriginalData.decode(text) == value
    assert OriginalData.decode(text).encode() == text


def test_original_data_of_a_message() -> None:
    fields = {"11": "000123", "12": "251121154041", "32": "0000000005"}
    assert OriginalData.of("1200", fields).encode() == "1200000123251121154041100000000005"


@pytest.mark.parametrize(
    "bad", ["", "1200", "1200000123", "120000012325112115404", "12000001232511211540410", "x" * 22]
)
def test_original_data_decode_errors(bad: str) -> None:
    with pytest.raises(DecodeError) as caught:
        OriginalData.decode(bad)
    assert caught.value.field == "56"


def test_original_data_encode_errors() -> None:
    with pytest.raises(EncodeError):
        OriginalData("120", "000123", "251121154041").encode()
    with pytest.raises(EncodeError):
        OriginalData("1200", "000123", "251121154041", "123456789012").encode()


# -- 90 ----------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(
    st.builds(
        OriginalElements,
        _digits(4),
        _digits(6),
        _digits(10),
        st.integers(1, 11).flatmap(_digits),
        st.integers(1, 11).flatmap(_digits),
    )
)
def test_original_elements_round_trip(value: OriginalElements) -> None:
    text = value.encode()
    assert len(text) == 42
    assert OriginalElements.decode(text) == value


def test_original_elements_zero_fill() -> None:
    value = OriginalElements.of("0200", {"11": "000123", "7": "1121144041", "32": "5"})
    assert value.encode() == "0200" + "000123" + "1121144041" + "00000000005" + "00000000000"
    with pytest.raises(DecodeError):
        OriginalElements.decode("0200")


# -- 30 ----------------------------------------------------------------------


@settings(max_examples=30, deadline=None)
@given(st.builds(OriginalAmounts, st.integers(0, 10**12 - 1), st.integers(0, 10**12 - 1)))
def test_original_amounts_round_trip(value: OriginalAmounts) -> None:
    assert OriginalAmounts.decode(value.encode()) == value


def test_original_amounts_errors() -> None:
    with pytest.raises(EncodeError):
        OriginalAmounts(10**12).encode()
    with pytest.raises(DecodeError):
        OriginalAmounts.decode("12")


# -- 63 ----------------------------------------------------------------------

_decimals = st.decimals(min_value=0, max_value=99999, places=3, allow_nan=False)
_codes = st.text(alphabet="0123456789ABCZ", min_size=1, max_size=6)
items = st.builds(
    ProductItem,
    _codes,
    st.sampled_from(["L", "G", "KG", "U"]),
    _decimals,
    _decimals,
    st.integers(0, 10**12 - 1),
    st.text(alphabet="0123456789A", max_size=2),
    st.text(alphabet="0123456789", max_size=3),
)


@settings(max_examples=40, deadline=None)
@given(st.builds(ProductData, st.sampled_from("SFN"), st.lists(items, min_size=1, max_size=5)))
def test_product_data_round_trip(value: ProductData) -> None:
    text = value.encode()
    back = ProductData.decode(text)
    assert back == value
    assert back.encode() == text


def test_product_data_by_hand() -> None:
    value = ProductData.decode("S\\02\\1\\L\\25.42\\1.659\\4217\\1\\\\98\\U\\1\\2.50\\250\\2\\\\")
    assert value.service_level == "S"
    assert value.items[0] == ProductItem("1", "L", Decimal("25.42"), Decimal("1.659"), 4217, "1")
    assert value.items[1].amount == 250
    assert value.total == 4467


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "S\\",
        "S\\01\\",
        "S\\02\\1\\L\\1\\1\\1\\\\\\",
        "S\\01\\1\\L\\1e3\\1\\1\\\\\\",
        "S\\01\\1\\L\\1\\1\\-1\\\\\\",
        "S\\01\\1\\L\\1\\1\\1\\\\\\extra\\",
        "S\\00\\",
    ],
)
def test_product_data_decode_errors(bad: str) -> None:
    with pytest.raises(DecodeError) as caught:
        ProductData.decode(bad)
    assert caught.value.field == "63"


def test_product_data_encode_errors() -> None:
    item = ProductItem("1", "L", Decimal("1"), Decimal("1"), 1)
    with pytest.raises(EncodeError):
        ProductData("S", ()).encode()
    with pytest.raises(EncodeError):
        ProductData("S", (ProductItem("1\\", "L", Decimal(1), Decimal(1), 1),)).encode()
    with pytest.raises(EncodeError):
        ProductData("S", (ProductItem("1", "L", Decimal(-1), Decimal(1), 1),)).encode()
    with pytest.raises(EncodeError):
        ProductData("SS", (item,)).encode()


# -- 48 ----------------------------------------------------------------------


def _sub_value(number: int) -> st.SearchStrategy[str | bytes]:
    layout = SUBELEMENTS_48[number]
    sizes = st.integers(0, layout.length) if layout.prefix else st.just(layout.length)
    if layout.kind == "b":
        return sizes.flatmap(lambda n: st.binary(min_size=n, max_size=n))
    alphabet = "0123456789" if layout.kind == "n" else "0123456789=D"
    if layout.kind == "an":
        return sizes.flatmap(
            lambda n: st.text(
                alphabet=st.characters(min_codepoint=0, max_codepoint=255), min_size=n, max_size=n
            )
        )
    return sizes.flatmap(lambda n: st.text(alphabet=alphabet, min_size=n, max_size=n))


@settings(max_examples=60, deadline=None)
@given(st.data(), st.sets(st.sampled_from(sorted(SUBELEMENTS_48)), max_size=8))
def test_field48_round_trip(data: st.DataObject, numbers: set[int]) -> None:
    elements = {n: data.draw(_sub_value(n)) for n in numbers}
    text = encode_field48(elements)
    assert text == text.upper()
    assert decode_field48(text) == elements


def test_field48_by_hand() -> None:
    # bitmap: sub-elements 3 and 4 (0x30), 14 (0x04 in byte 2), 38 (0x04 in byte 5)
    raw = bytes.fromhex("30 04 00 00 04 00 00 00") + b"DE" + b"0000000001" + b"33" + b"1"
    assert decode_field48(raw.hex()) == {3: "DE", 4: "0000000001", 14: "33", 38: "1"}
    assert encode_field48({38: "1", 3: "DE", 14: "33", 4: "0000000001"}) == raw.hex().upper()


@pytest.mark.parametrize(
    "bad",
    [
        "zz",
        "00",
        "8000000000000000",  # extended bitmap
        "4000000000000000",  # sub-element 2 announced, absent
        "0100000000000000",  # sub-element 8: missing length
        "0040000000000000" + b"x9".hex(),  # sub-element 10: length not digits
        "0000000000000000" + "00",  # data after the last sub-element
        "0008000000000000",  # sub-element 13: not defined
        "1000000000000000" + b"00000000xx".hex(),  # sub-element 4 not numeric
    ],
)
def test_field48_decode_errors(bad: str) -> None:
    with pytest.raises(DecodeError) as caught:
        decode_field48(bad)
    assert caught.value.field == "48"


def test_field48_encode_errors() -> None:
    for bad in ({13: "x"}, {3: "D"}, {3: b"DE"}, {40: "abcd"}, {4: "00000000xx"}, {8: "x" * 251}):
        with pytest.raises(EncodeError):
            encode_field48(bad)


def test_fields_re_exports_every_helper_of_the_concept_modules() -> None:
    # switch/ and simulators/ import from forecourt.codecs.fields: the split must not move a name.
    from forecourt.codecs import field48, fields, masking, original, product

    names: set[str] = set()
    for module in (masking, original, product, field48):
        for name in module.__all__:
            assert getattr(fields, name) is getattr(module, name)
        names.update(module.__all__)
    assert set(fields.__all__) == names
