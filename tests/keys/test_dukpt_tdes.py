"""TDES DUKPT (X9.24-1-2009) against the standard's known answers and pydukpt.

Known answers: ANSI X9.24-1-2009 annex A.4 ("Test data"), BDK
0123456789ABCDEFFEDCBA9876543210 and KSN FFFF9876543210E0000n: the IPEK, the
current (future key register) keys for several counters, the counter-1 PIN, MAC
request/response and data request keys, and the counter-1 PIN block for PIN 1234
and PAN 4012345678909. pydukpt 0.1.0 (MIT, written independently from the same
standard) is the cross-check over random BDKs and KSNs.
"""

from __future__ import annotations

import pydukpt
import pytest
from forecourt.keys.crypto import Algorithm
from forecourt.keys.dukpt_tdes import (
    MAX_COUNTER_ONES,
    TdesVariant,
    counter_of,
    initial_ksn,
    is_valid_counter,
    next_counter,
    tdes_future_key,
    tdes_ipek,
    tdes_session_key,
)
from forecourt.keys.errors import InvalidKey
from forecourt.keys.pin import encrypt_pin_block
from hypothesis import given, settings
from hypothesis import strategies as st

BDK = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")


def ksn(tail: str) -> bytes:
    return bytes.fromhex("FFFF9876543210" + tail)


def test_annex_a4_ipek() -> None:
    assert tdes_ipek(BDK, ksn("E00001")).hex().upper() == "6AC292FAA1315B4D858AB3A3D7D5933A"
    # the counter never enters the IPEK
    assert tdes_ipek(BDK, ksn("E00000")) == tdes_ipek(BDK, ksn("EFF800"))


@pytest.mark.parametrize(
    ("tail", "current_key"),
    [
        ("E00001", "042666B49184CFA368DE9628D0397BC9"),
        ("E00002", "C46551CEF9FD24B0AA9AD834130D3BC7"),
        ("E00003", "0DF3D9422ACA56E547676D07AD6BADFA"),
        ("EFF800", "F9CDFEBF4F5B1D9EB3EC12454527E176"),  # counter 0x0FF800, nine one-bits
    ],
)
def test_annex_a4_current_keys(tail: str, current_key: str) -> None:
    k = ksn(tail)
    assert tdes_future_key(tdes_ipek(BDK, k), k).hex().upper() == current_key


@pytest.mark.parametrize(
    ("variant", "key"),
    [
        (TdesVariant.PIN, "042666B49184CF5C68DE9628D0397B36"),
        (TdesVariant.MAC_REQUEST, "042666B4918430A368DE9628D03984C9"),
        (TdesVariant.MAC_RESPONSE, "042666B46E84CFA368DE96282F397BC9"),
        (TdesVariant.DATA_REQUEST, "448D3F076D8304036A55A3D7E0055A78"),
    ],
)
def test_annex_a4_counter_one_variants(variant: TdesVariant, key: str) -> None:
    assert tdes_session_key(BDK, ksn("E00001"), variant).hex().upper() == key


def test_annex_a4_pin_block_counter_one() -> None:
    pek = tdes_session_key(BDK, ksn("E00001"), TdesVariant.PIN)
    block = encrypt_pin_block(pek, Algorithm.TDES2, "1234", "4012345678909")
    assert block.hex().upper() == "1B9C1845EB993A7A"


def test_counter_rules() -> None:
    assert counter_of(ksn("EFF800")) == 0x0FF800
    assert initial_ksn(ksn("E00007")) == ksn("E00000")
    assert not is_valid_counter(0)
    assert is_valid_counter(0x1FF800)  # ten one-bits
    assert not is_valid_counter(0x0007FF)  # eleven one-bits: never used by a terminal
    assert next_counter(0x0003FF) == 0x000400  # 0x3FF + 1 has one bit
    assert next_counter(0x0007FE) == 0x000800  # 0x7FF has eleven: skipped
    assert next_counter(0x1FF800) is None  # exhausted
    with pytest.raises(InvalidKey):
        tdes_future_key(tdes_ipek(BDK, ksn("E00000")), ksn("E007FF"))
    with pytest.raises(InvalidKey):
        tdes_ipek(BDK, bytes(8))


@st.composite
def valid_ksns(draw: st.DrawFn) -> bytes:
    head = draw(st.integers(0, (1 << 59) - 1))
    bits = draw(st.lists(st.integers(0, 20), min_size=1, max_size=MAX_COUNTER_ONES, unique=True))
    counter = sum(1 << b for b in bits)
    return ((head << 21) | counter).to_bytes(10, "big")


@settings(max_examples=60, deadline=None)
@given(bdk=st.binary(min_size=16, max_size=16), k=valid_ksns())
def test_agrees_with_pydukpt(bdk: bytes, k: bytes) -> None:
    ipek = tdes_ipek(bdk, k)
    assert ipek == pydukpt.derive_ipek(bdk, k)
    current = pydukpt.derive_key(ipek, k)
    assert tdes_future_key(ipek, k) == current
    assert tdes_session_key(bdk, k, TdesVariant.PIN) == pydukpt.pin_key(current)
    assert tdes_session_key(bdk, k, TdesVariant.MAC_REQUEST) == pydukpt.mac_request_key(current)
    assert tdes_session_key(bdk, k, TdesVariant.MAC_RESPONSE) == pydukpt.mac_response_key(current)
    assert tdes_session_key(bdk, k, TdesVariant.DATA_REQUEST) == pydukpt.data_request_key(current)
    assert tdes_session_key(bdk, k, TdesVariant.DATA_RESPONSE) == pydukpt.data_response_key(current)


@settings(max_examples=60, deadline=None)
@given(counter=st.integers(1, 0x1FFFFF))
def test_next_counter_agrees_with_pydukpt(counter: int) -> None:
    k = ((int.from_bytes(ksn("E00000"), "big") & ~0x1FFFFF) | counter).to_bytes(10, "big")
    try:
        expected: int | None = pydukpt.ksn_counter(pydukpt.next_ksn(k))
    except pydukpt.KSNExhaustedError:
        expected = None
    assert next_counter(counter) == expected
