"""MAC and KCV: published known answers, psec cross-checks, properties."""

from __future__ import annotations

import warnings

import psec
import pytest
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.cmac import CMAC
from forecourt.keys import AesCmac, Algorithm, InvalidKey, RetailMac, aes_cmac, kcv, retail_mac
from forecourt.keys.crypto import generate_key
from hypothesis import given, settings
from hypothesis import strategies as st

# NIST SP 800-38B, appendix D.1 (AES-128)
NIST_KEY = bytes.fromhex("2b7e151628aed2a6abf7158809cf4f3c")
NIST_MSG = bytes.fromhex(
    "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51"
    "30c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710"
)
NIST_TAGS = {
    0: "bb1d6929e95937287fa37d129b756746",
    16: "070a16b46b4d4144f79bdd9dd04a287c",
    40: "dfa66747de9ae63030ca32611497c827",
    64: "51f0bebf7e3b9d92fc49741779363cfe",
}


@pytest.mark.parametrize("length", sorted(NIST_TAGS))
def test_aes_cmac_nist_sp800_38b(length: int) -> None:
    prepared = AesCmac(NIST_KEY)
    for _ in range(2):  # the reused context must give the same tag again
        assert prepared.tag(NIST_MSG[:length]).hex() == NIST_TAGS[length]
    assert aes_cmac(NIST_KEY, NIST_MSG[:length]).hex() == NIST_TAGS[length][:16]


def test_retail_mac_icao_9303_vector() -> None:
    # ICAO Doc 9303 part 11, appendix D.3 (BAC): ISO 9797-1 MAC algorithm 3 over
    # E_IFD padded with method 2; the padded data is a whole number of blocks, so
    # padding method 1 leaves it as it is.
    k_mac = bytes.fromhex("7962D9ECE03D1ACD4C76089DCE131543")
    e_ifd = bytes.fromhex("72C29C2371CC9BDB65B779B8E8D37B29ECC154AA56A8799FAE2F498F76ED92F2")
    assert retail_mac(k_mac, e_ifd + bytes.fromhex("8000000000000000")).hex().upper() == (
        "5F1448EEA8AD90A7"
    )


def test_kcv_known_values() -> None:
    # The classic test key 0123456789ABCDEF FEDCBA9876543210 has KCV 08D7B4.
    assert kcv(bytes.fromhex("0123456789ABCDEFFEDCBA9876543210"), Algorithm.TDES2) == "08D7B4"
    # AES: first 3 bytes of CMAC(zero block), checked against cryptography's CMAC.
    c = CMAC(algorithms.AES(NIST_KEY))
    c.update(bytes(16))
    assert kcv(NIST_KEY, Algorithm.AES128) == c.finalize()[:3].hex().upper()
    # TR-31:2018 A.7.2.2 key and the KCV published with it
    assert kcv(bytes.fromhex("3F419E1CB7079442AA37474C2EFBF8B8"), Algorithm.TDES2) == "57C409"


def _straight_retail(key: bytes, data: bytes) -> bytes:
    """Independent textbook ISO 9797-1 alg. 3: block-by-block single DES."""
    k1, k2 = key[:8], key[8:]
    if not data or len(data) % 8:
        data = data + bytes(8 - len(data) % 8) if data else bytes(8)
    h = bytes(8)
    for i in range(0, len(data), 8):
        block = bytes(a ^ b for a, b in zip(h, data[i : i + 8], strict=True))
        h = Cipher(TripleDES(k1 * 3), modes.ECB()).encryptor().update(block)
    h = Cipher(TripleDES(k2 * 3), modes.ECB()).decryptor().update(h)
    return Cipher(TripleDES(k1 * 3), modes.ECB()).encryptor().update(h)


def _psec_retail(key: bytes, data: bytes) -> bytes:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return bytes(psec.mac.generate_retail_mac(key[:8], key[8:], data, 1))


@settings(max_examples=60, deadline=None)
@given(st.binary(min_size=0, max_size=300), st.binary(min_size=0, max_size=40))
def test_retail_mac_matches_psec_and_textbook(data: bytes, noise: bytes) -> None:
    key = generate_key(Algorithm.TDES2)
    prepared = RetailMac(key)
    prepared.generate(noise)  # a previous message must not leak into the next
    mac = prepared.generate(data)
    assert mac == _psec_retail(key, data)
    assert mac == _straight_retail(key, data)


@settings(max_examples=60, deadline=None)
@given(st.binary(min_size=0, max_size=300), st.sampled_from([16, 24, 32]))
def test_cmac_matches_cryptography(data: bytes, key_len: int) -> None:
    import os

    key = os.urandom(key_len)
    prepared = AesCmac(key)
    prepared.generate(os.urandom(33))
    c = CMAC(algorithms.AES(key))
    c.update(data)
    assert prepared.tag(data) == c.finalize()


@settings(max_examples=40, deadline=None)
@given(
    st.sampled_from(["retail", "cmac"]),
    st.binary(min_size=1, max_size=256),
    st.data(),
)
def test_verify_generate_and_bit_flips(algo: str, data: bytes, draw: st.DataObject) -> None:
    key = generate_key(Algorithm.TDES2 if algo == "retail" else Algorithm.AES128)
    m = RetailMac(key) if algo == "retail" else AesCmac(key)
    mac = m.generate(data)
    assert len(mac) == 8
    assert m.verify(data, mac)
    bit = draw.draw(st.integers(0, len(data) * 8 - 1))
    flipped = bytearray(data)
    flipped[bit // 8] ^= 1 << (bit % 8)
    assert not m.verify(bytes(flipped), mac)
    mbit = draw.draw(st.integers(0, 63))
    bad = bytearray(mac)
    bad[mbit // 8] ^= 1 << (mbit % 8)
    assert not m.verify(data, bytes(bad))


def test_bad_keys_and_repr() -> None:
    with pytest.raises(InvalidKey):
        RetailMac(bytes(8))
    with pytest.raises(InvalidKey):
        RetailMac(bytes(16))  # K1 == K2
    with pytest.raises(InvalidKey):
        AesCmac(bytes(15))
    key = generate_key(Algorithm.TDES2)
    r = repr(RetailMac(key))
    assert key.hex() not in r.lower() and "kcv=" in r


def test_prepared_mac_is_thread_safe() -> None:
    from concurrent.futures import ThreadPoolExecutor

    key = generate_key(Algorithm.AES128)
    m = AesCmac(key)
    msgs = [bytes([i]) * (i + 1) for i in range(200)]
    expected = [aes_cmac(key, d) for d in msgs]
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(m.generate, msgs))
    assert got == expected
