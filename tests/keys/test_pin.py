"""PIN blocks: known answers (ISO 9564-1 format 0, ANSI X9.24-3 format 4), round trips,
translation, no PIN digits in errors."""

from __future__ import annotations

import pytest
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, modes
from forecourt.keys import Algorithm, generate_key
from forecourt.keys.pin import (
    PinBlockError,
    PinKey,
    SoftwarePinTranslator,
    decrypt_pin_block,
    encrypt_pin_block,
    open_block,
    pan_field_0,
    pan_field_4,
    translate_pin_block,
)
from hypothesis import given, settings
from hypothesis import strategies as st

PAN = "4761739001010010"


@settings(max_examples=30, deadline=None)
@given(
    st.text("0123456789", min_size=4, max_size=12),
    st.sampled_from([Algorithm.TDES2, Algorithm.AES128]),
    st.sampled_from([Algorithm.TDES2, Algorithm.AES128]),
)
def test_round_trip_and_translate(pin: str, tpk_alg: Algorithm, zpk_alg: Algorithm) -> None:
    tpk, zpk = generate_key(tpk_alg), generate_key(zpk_alg)
    block = encrypt_pin_block(tpk, tpk_alg, pin, PAN)
    assert len(block) == (16 if tpk_alg.is_aes else 8)
    assert decrypt_pin_block(tpk, tpk_alg, block, PAN) == pin
    out = translate_pin_block(tpk, tpk_alg, zpk, zpk_alg, block, PAN)
    assert decrypt_pin_block(zpk, zpk_alg, out, PAN) == pin


def test_errors_carry_no_pin() -> None:
    key = generate_key(Algorithm.TDES2)
    with pytest.raises(PinBlockError) as e:
        encrypt_pin_block(key, Algorithm.TDES2, "12a4", PAN)
    assert "12a4" not in str(e.value)
    block = encrypt_pin_block(key, Algorithm.TDES2, "987654", PAN)
    with pytest.raises(PinBlockError) as e2:
        decrypt_pin_block(generate_key(Algorithm.TDES2), Algorithm.TDES2, block, PAN)
    assert "987654" not in str(e2.value)


def test_store_translates_tpk_to_zpk(tmp_path: object) -> None:
    import os
    from pathlib import Path

    from forecourt.keys import KeyStore, KeyType, Lmk, install_key_change
    from forecourt.keys.crypto import adjust_parity

    with KeyStore.init(Path(str(tmp_path)), lmk=Lmk.generate()) as store:
        c = store.add_terminal("T1")
        tpk = install_key_change(c.clear_kek, c.payload).get(KeyType.TPK)
        comps = [os.urandom(16), os.urandom(16)]
        info = store.add_acquirer("acq", comps)
        zmk = adjust_parity(bytes(a ^ b for a, b in zip(*comps, strict=True)))
        zpk = install_key_change(zmk, info.payload).get(KeyType.ZPK)
        block = encrypt_pin_block(tpk.key, tpk.algorithm, "1234", PAN)
        out = store.translate_pin_block("T1", "acq", block, PAN)
        assert decrypt_pin_block(zpk.key, zpk.algorithm, out, PAN) == "1234"


# -- known answers from the standards --------------------------------------------------

# ANSI X9.24-3:2017 supplement test vectors (AES-128 BDK, KSN ...0001): "Calculation
# of AES PIN Block Format 4" with the first derived PIN encryption key.
X924_PIN_KEY = bytes.fromhex("AF8CB133A78F8DC2D1359F18527593FB")
X924_PAN = "4111111111111111"
X924_RANDOM = bytes.fromhex("2F69ADDE2E9E7ACE")
X924_PAN_FIELD = "44111111111111111000000000000000"
X924_BLOCK = "A912150391AB65A67E52883D81CE2D15"


def _tdes_decrypt(key: bytes, block: bytes) -> bytes:
    d = Cipher(TripleDES(key + key[:8]), modes.ECB()).decryptor()
    return d.update(block) + d.finalize()


def test_format_0_known_answer() -> None:
    """ISO 9564-1 format 0, the textbook example: PIN 1234, PAN 43219876543210987
    -> clear PIN block 0412AC89ABCDEF67 (PAN field 0000987654321098)."""
    assert pan_field_0("43219876543210987").hex().upper() == "0000987654321098"
    key = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
    block = encrypt_pin_block(key, Algorithm.TDES2, "1234", "43219876543210987")
    assert _tdes_decrypt(key, block).hex().upper() == "0412AC89ABCDEF67"
    assert decrypt_pin_block(key, Algorithm.TDES2, block, "43219876543210987") == "1234"


def test_format_4_known_answer() -> None:
    assert pan_field_4(X924_PAN).hex().upper() == X924_PAN_FIELD
    block = encrypt_pin_block(
        X924_PIN_KEY, Algorithm.AES128, "1234", X924_PAN, fill=lambda n: X924_RANDOM[:n]
    )
    assert block.hex().upper() == X924_BLOCK
    assert decrypt_pin_block(X924_PIN_KEY, Algorithm.AES128, block, X924_PAN) == "1234"


def test_short_pans_are_left_filled() -> None:
    """ISO 9564-1: a PAN shorter than 12 digits (check digit excluded) is right
    justified and zero-filled, in both formats (psec refuses these)."""
    assert pan_field_0("12345678903").hex().upper() == "0000001234567890"
    assert pan_field_4("123456789").hex().upper() == "00001234567890000000000000000000"
    key = generate_key(Algorithm.TDES2)
    block = encrypt_pin_block(key, Algorithm.TDES2, "4321", "12345678903")
    assert decrypt_pin_block(key, Algorithm.TDES2, block, "12345678903") == "4321"


def test_format_4_fill_is_random() -> None:
    key = generate_key(Algorithm.AES128)
    blocks = {encrypt_pin_block(key, Algorithm.AES128, "1234", PAN) for _ in range(8)}
    assert len(blocks) == 8


PANS = st.text("0123456789", min_size=2, max_size=19)
PINS = st.text("0123456789", min_size=4, max_size=12)


@settings(max_examples=60, deadline=None)
@given(PINS, PANS, st.sampled_from(list(Algorithm)))
def test_round_trip_any_pan(pin: str, pan: str, algorithm: Algorithm) -> None:
    key = generate_key(algorithm)
    block = encrypt_pin_block(key, algorithm, pin, pan)
    assert len(block) == (16 if algorithm.is_aes else 8)
    assert decrypt_pin_block(key, algorithm, block, pan) == pin


@settings(max_examples=40, deadline=None)
@given(PINS, st.text("0123456789", min_size=13, max_size=19))
def test_agrees_with_psec(pin: str, pan: str) -> None:
    """An independent implementation: psec's clear format 0 block and format 4 decipher."""
    import psec

    key = generate_key(Algorithm.TDES2)
    block = encrypt_pin_block(key, Algorithm.TDES2, pin, pan)
    assert _tdes_decrypt(key, block) == psec.pinblock.encode_pinblock_iso_0(pin, pan)
    aes = generate_key(Algorithm.AES128)
    block4 = encrypt_pin_block(aes, Algorithm.AES128, pin, pan)
    assert psec.pinblock.decipher_pinblock_iso_4(aes, block4, pan) == pin


@settings(max_examples=40, deadline=None)
@given(PINS, PANS, st.sampled_from(list(Algorithm)), st.sampled_from(list(Algorithm)))
def test_translation_keeps_the_pin(pin: str, pan: str, a: Algorithm, b: Algorithm) -> None:
    tpk, zpk = generate_key(a), generate_key(b)
    block = encrypt_pin_block(tpk, a, pin, pan)
    out = SoftwarePinTranslator().translate(block, pan, PinKey(tpk, a), PinKey(zpk, b))
    assert out != block
    assert decrypt_pin_block(zpk, b, out, pan) == pin


@settings(max_examples=40, deadline=None)
@given(st.binary(min_size=8, max_size=8))
def test_wrong_key_or_garbage_is_refused_without_digits(block: bytes) -> None:
    """A block that is not format 0 under the key raises one fixed message; the
    exception has no cause or context that could carry what was decrypted."""
    key = PinKey(generate_key(Algorithm.TDES2), Algorithm.TDES2)
    try:
        digits = open_block(key, block, PAN)
    except PinBlockError as exc:
        assert str(exc) == "PIN block does not decode under this key"
        assert exc.__cause__ is None and exc.__context__ is None
    else:  # a random block can be a valid format 0 block: rare, and then it has digits
        assert 4 <= len(digits) <= 12


def test_wrong_length_is_refused() -> None:
    tdes = PinKey(generate_key(Algorithm.TDES2), Algorithm.TDES2)
    aes = PinKey(generate_key(Algorithm.AES128), Algorithm.AES128)
    with pytest.raises(PinBlockError):
        open_block(tdes, bytes(16), PAN)
    with pytest.raises(PinBlockError):
        open_block(aes, bytes(8), PAN)


def test_pin_key_repr_names_kcv_only() -> None:
    raw = generate_key(Algorithm.TDES2)
    key = PinKey(raw, Algorithm.TDES2, 3)
    assert repr(key) == f"PinKey(tdes2, v3, kcv={key.kcv})"
    assert raw.hex() not in repr(key).lower()
