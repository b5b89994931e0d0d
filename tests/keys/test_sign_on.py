"""The sign-on key: SP 800-108 counter-mode CMAC from the KEK, known answers."""

from __future__ import annotations

import pytest
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import algorithms
from cryptography.hazmat.primitives.kdf.kbkdf import KBKDFCMAC, CounterLocation, Mode
from forecourt.keys import (
    SIGN_ON_LABEL,
    Algorithm,
    Family,
    KeyStore,
    UnknownOwner,
    kdf_counter_cmac,
    retail_mac,
    sign_on_key,
    sign_on_mac,
)
from forecourt.keys.crypto import adjust_parity

TEST_KEK = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
AES_KEK = bytes(range(32))


def test_known_answers() -> None:
    # Fixed here once, from the derivation as docs/keys.md writes it down.
    assert sign_on_key(TEST_KEK, "T0000001").hex().upper() == "94D05ED052F2CE19077F9D16510E83BA"
    assert sign_on_key(AES_KEK, "T0000001").hex().upper() == "0BFC2F34C31F63B282E77D68B5F9F2DD"


@pytest.mark.parametrize(
    ("kek", "algorithm", "cipher"),
    [(TEST_KEK, Algorithm.TDES2, TripleDES), (AES_KEK, Algorithm.AES256, algorithms.AES)],
)
def test_matches_an_independent_sp800_108_implementation(
    kek: bytes, algorithm: Algorithm, cipher: type
) -> None:
    """pyca's KBKDFCMAC (checked against NIST CAVP) gives the same bytes."""
    for context in (b"T0000001", b"T0000002", b"X"):
        ours = kdf_counter_cmac(kek, algorithm, SIGN_ON_LABEL, context, 128)
        theirs = KBKDFCMAC(
            algorithm=cipher,
            mode=Mode.CounterMode,
            length=16,
            rlen=1,
            llen=2,
            location=CounterLocation.BeforeFixed,
            label=SIGN_ON_LABEL,
            context=context,
            fixed=None,
            # TDES wants its 24-byte form, as our tdes24 gives it
        ).derive(kek if algorithm.is_aes else kek + kek[:8])
        assert ours == theirs
        if not algorithm.is_aes:
            assert sign_on_key(kek, context.decode()) == adjust_parity(ours)


def test_differs_from_the_kek_and_between_terminals() -> None:
    one, two = sign_on_key(TEST_KEK, "T0000001"), sign_on_key(TEST_KEK, "T0000002")
    assert one != two and TEST_KEK not in (one, two)
    data = b"1804 sign-on up to the MAC"
    assert sign_on_mac(TEST_KEK, "T0000001").generate(data) == retail_mac(one, data)
    assert sign_on_mac(TEST_KEK, "T0000001").generate(data) != retail_mac(TEST_KEK, data)


def test_store_derives_what_the_terminal_derives(store: KeyStore) -> None:
    tdes = store.add_terminal("T0000001")
    aes = store.add_terminal("T0000002", Family.AES)
    data = b"0800 up to the MAC"
    for ceremony in (tdes, aes):
        ours = store.sign_on_mac(ceremony.terminal_id)
        theirs = sign_on_mac(ceremony.clear_kek, ceremony.terminal_id)
        assert ours.generate(data) == theirs.generate(data)
        assert ceremony.clear_kek.hex() not in repr(ours).lower()
    with pytest.raises(UnknownOwner):
        store.sign_on_mac("T0000404")
    store.add_acquirer("bank", [bytes(range(32)), bytes(range(1, 33))])
    with pytest.raises(UnknownOwner):
        store.sign_on_mac("bank")
