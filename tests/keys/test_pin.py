"""PIN blocks: round trips, translation, no PIN digits in errors."""

from __future__ import annotations

import pytest
from forecourt.keys import Algorithm, generate_key
from forecourt.keys.pin import (
    PinBlockError,
    decrypt_pin_block,
    encrypt_pin_block,
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
