"""TDES DUKPT (ANSI X9.24-1-2009, annex A): the receiving side's derivation.

A terminal is injected with an initial PIN encryption key (IPEK) derived from the
base derivation key (BDK) and its key serial number (KSN). For each transaction
the terminal uses a key that follows from the IPEK by the non-reversible key
generation process, once per one-bit of the 21-bit encryption counter, from the
highest bit down; the host repeats that walk from the BDK and the KSN the request
carries. The working key is then one of the standard variants (PIN, MAC request,
MAC response, data). Written from the standard's text; the annex A.4 known
answers are in tests/keys/test_dukpt_tdes.py.

The KSN is 10 bytes: a 59-bit initial key serial number (KSI and device ID) and a
21-bit counter. A counter with more than ten one-bits is never used by a terminal
(annex A.2), so the host refuses it too.
"""

from __future__ import annotations

import enum

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, modes
from forecourt.keys.crypto import tdes24
from forecourt.keys.errors import InvalidKey

__all__ = [
    "KSN_LENGTH",
    "MAX_COUNTER_ONES",
    "TdesVariant",
    "counter_of",
    "initial_ksn",
    "is_valid_counter",
    "next_counter",
    "tdes_future_key",
    "tdes_ipek",
    "tdes_session_key",
]

KSN_LENGTH = 10
COUNTER_BITS = 21
COUNTER_MASK = (1 << COUNTER_BITS) - 1
MAX_COUNTER_ONES = 10  # annex A.2: the terminal skips counters with more one-bits

_KEY_MASK = bytes.fromhex("C0C0C0C000000000C0C0C0C000000000")


class TdesVariant(enum.Enum):
    """The variant constants of X9.24-1-2009 annex A (figure A-2) XORed into the
    transaction key: one key per purpose, so a MAC key never decrypts a PIN."""

    PIN = "00000000000000FF00000000000000FF"
    MAC_REQUEST = "000000000000FF00000000000000FF00"
    MAC_RESPONSE = "00000000FF00000000000000FF000000"
    DATA_REQUEST = "0000000000FF00000000000000FF0000"
    DATA_RESPONSE = "000000FF00000000000000FF00000000"

    @property
    def mask(self) -> bytes:
        return bytes.fromhex(self.value)


def _check_ksn(ksn: bytes) -> None:
    if len(ksn) != KSN_LENGTH:
        raise InvalidKey(f"TDES DUKPT KSN must be {KSN_LENGTH} bytes, got {len(ksn)}")


def _check_bdk(bdk: bytes) -> None:
    if len(bdk) != 16:
        raise InvalidKey(f"TDES DUKPT BDK must be a 16-byte 2-key TDES key, got {len(bdk)} bytes")


def _xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


def _tdes_encrypt(key: bytes, block: bytes) -> bytes:
    enc = Cipher(TripleDES(tdes24(key)), modes.ECB()).encryptor()
    return enc.update(block) + enc.finalize()


def _des_encrypt(key8: bytes, block: bytes) -> bytes:
    return _tdes_encrypt(key8, block)  # K|K|K is single DES


def counter_of(ksn: bytes) -> int:
    """The 21-bit encryption counter of a KSN."""
    _check_ksn(ksn)
    return int.from_bytes(ksn, "big") & COUNTER_MASK


def initial_ksn(ksn: bytes) -> bytes:
    """The KSN with its counter cleared: what the IPEK is derived from."""
    _check_ksn(ksn)
    return (int.from_bytes(ksn, "big") & ~COUNTER_MASK).to_bytes(KSN_LENGTH, "big")


def is_valid_counter(counter: int) -> bool:
    """Whether a terminal would use this counter: non-zero, 21 bits, at most ten
    one-bits."""
    return 0 < counter <= COUNTER_MASK and counter.bit_count() <= MAX_COUNTER_ONES


def next_counter(counter: int) -> int | None:
    """The counter a terminal uses after `counter` (skipping values with more than
    ten one-bits, as the terminal does by adding the lowest one-bit), or None when
    the counter is exhausted."""
    nxt = counter + 1
    while nxt <= COUNTER_MASK and nxt.bit_count() > MAX_COUNTER_ONES:
        nxt += nxt & -nxt
    return nxt if nxt <= COUNTER_MASK else None


def tdes_ipek(bdk: bytes, ksn: bytes) -> bytes:
    """The initial PIN encryption key of the terminal whose KSN is `ksn` (A.6,
    "Initial PIN encryption key"): the leftmost 64 bits of the counter-cleared KSN
    TDES-encrypted under the BDK (left half) and under the BDK XOR C0C0C0C0...
    (right half)."""
    _check_bdk(bdk)
    base = initial_ksn(ksn)[:8]
    return _tdes_encrypt(bdk, base) + _tdes_encrypt(_xor(bdk, _KEY_MASK), base)


def _non_reversible(key: bytes, register: bytes) -> bytes:
    """The non-reversible key generation process (A.2) of a 16-byte key and the
    64-bit crypto register."""
    left = _one_half(_xor(key, _KEY_MASK), register)
    right = _one_half(key, register)
    return left + right


def _one_half(key: bytes, register: bytes) -> bytes:
    kl, kr = key[:8], key[8:]
    return _xor(_des_encrypt(kl, _xor(register, kr)), kr)


def tdes_future_key(ipek: bytes, ksn: bytes) -> bytes:
    """The transaction key for `ksn` from the terminal's IPEK: the counter's
    one-bits set one at a time into the rightmost 64 bits of the KSN, highest
    first, each step a non-reversible key generation (what the host does to
    arrive at the key the terminal's future key register held)."""
    if len(ipek) != 16:
        raise InvalidKey(f"TDES DUKPT IPEK must be 16 bytes, got {len(ipek)}")
    counter = counter_of(ksn)
    if not is_valid_counter(counter):
        raise InvalidKey("TDES DUKPT counter is zero or has more than ten one-bits")
    register = int.from_bytes(ksn[2:], "big") & ~COUNTER_MASK
    key = ipek
    for bit in range(COUNTER_BITS - 1, -1, -1):
        if counter >> bit & 1:
            register |= 1 << bit
            key = _non_reversible(key, register.to_bytes(8, "big"))
    return key


def tdes_session_key(bdk: bytes, ksn: bytes, variant: TdesVariant) -> bytes:
    """The working key for `ksn` and `variant`: the transaction key XOR the
    variant constant (16 bytes, 2-key TDES). A data key is then each of its halves
    TDES-encrypted under itself (the 2009 edition's data encryption key), so the
    data key is not a simple XOR of the PIN key."""
    key = _xor(tdes_future_key(tdes_ipek(bdk, ksn), ksn), variant.mask)
    if variant in (TdesVariant.DATA_REQUEST, TdesVariant.DATA_RESPONSE):
        key = _tdes_encrypt(key, key[:8]) + _tdes_encrypt(key, key[8:])
    return key
