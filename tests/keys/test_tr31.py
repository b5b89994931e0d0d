"""TR-31 key blocks: published TR-31:2018 examples and round trips."""

from __future__ import annotations

import os

import pytest
from forecourt.keys import Algorithm, KeyBlockInvalid, KeyType, kcv, tr31
from forecourt.keys.crypto import generate_key
from hypothesis import given, settings
from hypothesis import strategies as st

# TR-31:2018 annex A examples (as reproduced in openemv/tr31's test suite):
# A.7.2.2 (version B, TDES KBPK) and A.7.4 (version D, AES-256 KBPK).
TR31_B_KBPK = bytes.fromhex("DD7515F2BFC17F85CE48F3CA25CB21F6")
TR31_B_BLOCK = "B0080P0TE00E000094B420079CC80BA3461F86FE26EFC4A3B8E4FA4C5F5341176EED7B727B8A248E"
TR31_D_KBPK = bytes.fromhex("88E1AB2A2E3DD38C1FA039A536500CC8A87AB9D62DC92C01058FA79F44657DE6")
TR31_D_BLOCK = (
    "D0112P0AE00E0000B82679114F470F540165EDFBF7E250FCEA43F810D215F8D207E2E417C07156A2"
    "7E8E31DA05F7425509593D03A457DC34"
)
TR31_KEY = bytes.fromhex("3F419E1CB7079442AA37474C2EFBF8B8")


def test_tr31_2018_version_b_example() -> None:
    key = tr31.unwrap(TR31_B_KBPK, TR31_B_BLOCK, KeyType.TPK, Algorithm.TDES2)
    assert key == TR31_KEY
    assert kcv(key, Algorithm.TDES2) == "57C409"


def test_tr31_2018_version_d_example() -> None:
    key = tr31.unwrap(TR31_D_KBPK, TR31_D_BLOCK, KeyType.TPK, Algorithm.AES128)
    assert key == TR31_KEY
    assert kcv(key, Algorithm.AES128) == "08793E"


def test_wrong_kbpk_tamper_and_wrong_slot_are_refused() -> None:
    with pytest.raises(KeyBlockInvalid) as e:
        tr31.unwrap(bytes(16), TR31_B_BLOCK, KeyType.TPK, Algorithm.TDES2)
    assert TR31_KEY.hex().upper() not in str(e.value)
    tampered = TR31_B_BLOCK[:-1] + ("0" if TR31_B_BLOCK[-1] != "0" else "1")
    with pytest.raises(KeyBlockInvalid):
        tr31.unwrap(TR31_B_KBPK, tampered, KeyType.TPK, Algorithm.TDES2)
    with pytest.raises(KeyBlockInvalid):  # a PIN key block cannot be used as a MAC key
        tr31.unwrap(TR31_B_KBPK, TR31_B_BLOCK, KeyType.TAK, Algorithm.TDES2)
    with pytest.raises(KeyBlockInvalid):
        tr31.unwrap(TR31_B_KBPK, "garbage", KeyType.TPK, Algorithm.TDES2)


KBPKS = [Algorithm.TDES2, Algorithm.TDES3, Algorithm.AES128, Algorithm.AES192, Algorithm.AES256]
KEYS = list(Algorithm)


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(KBPKS),
    st.sampled_from(KEYS),
    st.sampled_from([t for t in KeyType]),
)
def test_wrap_unwrap_round_trip(kbpk_alg: Algorithm, key_alg: Algorithm, key_type: KeyType) -> None:
    kbpk = generate_key(kbpk_alg)
    key = generate_key(key_alg)
    block = tr31.wrap(kbpk, kbpk_alg, key, key_type, key_alg)
    assert block[0] == ("D" if kbpk_alg.is_aes else "B")
    assert key.hex().upper() not in block.upper()
    assert tr31.unwrap(kbpk, block, key_type, key_alg) == key
    found, again = tr31.unwrap_any(kbpk, block, key_type)
    assert again == key
    # the header names only AES or TDES; the key length tells the rest
    assert found is key_alg
    with pytest.raises(KeyBlockInvalid):
        tr31.unwrap(generate_key(kbpk_alg), block, key_type, key_alg)


def test_wrap_refuses_wrong_length() -> None:
    from forecourt.keys import InvalidKey

    with pytest.raises(InvalidKey):
        tr31.wrap(os.urandom(32), Algorithm.AES256, os.urandom(15), KeyType.TAK, Algorithm.AES128)
