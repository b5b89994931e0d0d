"""AES DUKPT (X9.24-3-2017) against the supplement's published test vectors.

Source of every known answer: the ANSI X9.24-3-2017 supplement, "X9.24 Part 3 -
Test Vectors" (X9, file X9.24-3-2017-Test-Vectors-20180129), AES-128 BDK
FEDCBA9876543210F1F1F1F1F1F1F1F1 and AES-256 BDK FEDCBA9876543210F1F1F1F1F1F1F1F1
FEDCBA9876543210F1F1F1F1F1F1F1F1, initial key ID 1234567890123456: the initial
keys, the working keys of every usage at counter 1, the PIN/MAC/data keys at
counters 2, 3, 4 and 8, the 2- and 3-key TDES PIN keys at counter 1, and a
many-bit counter (8675309, 0x845FED).
"""

from __future__ import annotations

import pytest
from forecourt.keys.crypto import Algorithm
from forecourt.keys.dukpt_aes import (
    aes_initial_key,
    aes_working_key,
    counter_of,
    initial_key_id_of,
    is_valid_counter,
    ksn_of,
    next_counter,
)
from forecourt.keys.errors import InvalidKey
from forecourt.keys.security_module import DukptKeyUsage as U
from hypothesis import given, settings
from hypothesis import strategies as st

BDK128 = bytes.fromhex("FEDCBA9876543210F1F1F1F1F1F1F1F1")
BDK256 = BDK128 * 2
IKID = bytes.fromhex("1234567890123456")


def test_initial_keys() -> None:
    assert aes_initial_key(BDK128, IKID).hex().upper() == "1273671EA26AC29AFA4D1084127652A1"
    assert aes_initial_key(BDK256, IKID).hex().upper() == (
        "CE9CE0C101D1138F97FB6CAD4DF045A7083D4EAE2D35A31789D01CCF0949550F"
    )


@pytest.mark.parametrize(
    ("usage", "key"),
    [
        (U.PIN_ENCRYPTION, "AF8CB133A78F8DC2D1359F18527593FB"),
        (U.MAC_GENERATION, "A2DC23DE6FDE0824A2BC321E08E4B8B7"),
        (U.MAC_VERIFICATION, "DBB463945B286C07CD3AD82EE96FD9C9"),
        (U.MAC_BOTH_WAYS, "85675439D18D7F1158BD8E3EAA3D502B"),
        (U.DATA_ENCRYPTION_ENCRYPT, "A35C412EFD41FDB98B69797C02DCD08F"),
        (U.DATA_ENCRYPTION_DECRYPT, "16292C6EA8F64C5420A0584BFBC577BE"),
        (U.DATA_ENCRYPTION_BOTH_WAYS, "A308E080DD15A1B741F1721BF67DE11C"),
    ],
)
def test_aes128_counter_one_every_usage(usage: U, key: str) -> None:
    assert aes_working_key(BDK128, ksn_of(IKID, 1), usage).hex().upper() == key


@pytest.mark.parametrize(
    ("counter", "pin", "mac", "data"),
    [
        (
            2,
            "D30BDC73EC9714B000BEC66BDB7B6D09",
            "484C3B06E8562704528CD5B46FB12FB6",
            "D639514AA33AC43AD9229E433D6D4E5B",
        ),
        (
            3,
            "7D69F01F3B45449F62C7816ECE723268",
            "A5DF7D9D800CA769766F0C77CA4E6E6C",
            "EF17F6AB45B4820C93A3DCB21BC491AD",
        ),
        (
            4,
            "91A0588318EC2673214271F70137896E",
            "E6E4679647D8A9057C1FC15537CB4C4E",
            "B3BD44C08BB6BA27C3BB4711D7D70387",
        ),
        (
            8,
            "4D9DF3FBEE3448FC3E676D04320A90F5",
            "6FD572E5D59E618875F193484F9178FB",
            "650F34204ABD4E57764D61AC3D266FB1",
        ),
    ],
)
def test_aes128_later_counters(counter: int, pin: str, mac: str, data: str) -> None:
    k = ksn_of(IKID, counter)
    assert aes_working_key(BDK128, k, U.PIN_ENCRYPTION).hex().upper() == pin
    assert aes_working_key(BDK128, k, U.MAC_GENERATION).hex().upper() == mac
    assert aes_working_key(BDK128, k, U.DATA_ENCRYPTION_ENCRYPT).hex().upper() == data


def test_many_bit_counter_walks_every_intermediate_key() -> None:
    k = ksn_of(IKID, 8675309)
    assert aes_working_key(BDK128, k, U.PIN_ENCRYPTION).hex().upper() == (
        "D1DDA386AA4A556AF0119FDCB5D132C6"
    )


def test_aes256_and_tdes_working_keys() -> None:
    k = ksn_of(IKID, 1)
    assert aes_working_key(BDK256, k, U.PIN_ENCRYPTION, Algorithm.AES256).hex().upper() == (
        "8C1AB7BEE973829E30242E0BBBDD4946D540C98FC1B5BDCF94790001A23FD502"
    )
    assert aes_working_key(BDK128, k, U.PIN_ENCRYPTION, Algorithm.TDES2).hex().upper() == (
        "630C706D9546E47D4449313F61C4D4AB"
    )
    assert aes_working_key(BDK128, k, U.PIN_ENCRYPTION, Algorithm.TDES3).hex().upper() == (
        "EA8B3F37EB9B15831167EF2977FD8762D9B5913F35766F6A"
    )
    with pytest.raises(InvalidKey):  # never stronger than the initial key
        aes_working_key(BDK128, k, U.PIN_ENCRYPTION, Algorithm.AES256)


def test_counter_rules() -> None:
    k = ksn_of(IKID, 0xFFFF0000)
    assert initial_key_id_of(k) == IKID
    assert counter_of(k) == 0xFFFF0000
    assert is_valid_counter(0xFFFF0000)  # 16 one-bits: the last counter
    assert not is_valid_counter(0x0001FFFF)  # 17 one-bits
    assert not is_valid_counter(0)
    assert next_counter(0x0001FFFE) == 0x00020000  # 0x1FFFF skipped
    assert next_counter(0xFFFF0000) is None  # exhausted
    with pytest.raises(InvalidKey):
        aes_working_key(BDK128, ksn_of(IKID, 0x0001FFFF), U.PIN_ENCRYPTION)
    with pytest.raises(InvalidKey):
        aes_working_key(BDK128, bytes(10), U.PIN_ENCRYPTION)


@settings(max_examples=100, deadline=None)
@given(counter=st.integers(1, (1 << 32) - 1))
def test_next_counter_is_the_next_usable_one(counter: int) -> None:
    """The next counter is usable, greater, and no usable counter lies between."""
    nxt = next_counter(counter)
    if nxt is None:
        assert counter >= 0xFFFF0000
        return
    assert nxt > counter and is_valid_counter(nxt)
    probe = counter + 1
    while probe < nxt and probe < counter + 4096:
        assert not is_valid_counter(probe)
        probe += 1
