"""AES DUKPT (ANSI X9.24-3-2017): the receiving side's derivation.

The terminal holds an initial key derived from the BDK and its 8-byte initial key
ID; each transaction uses a working key derived from the intermediate derivation
key of its 32-bit transaction counter. The host repeats the walk: from the
initial key, one derivation per one-bit of the counter (highest first), then the
working key for the usage (PIN, MAC, data) and key type wanted. Every
derivation is AES-ECB of 16-byte derivation data under the current key
(section 6.3, "Derivation data"), one block per 128 bits of the derived key.
Written from the standard's text; the supplement's known answers are in
tests/keys/test_dukpt_aes.py.

The KSN is 12 bytes: the initial key ID (BDK ID 4 bytes, derivation ID 4 bytes)
and the counter. A terminal never uses a counter with more than 16 one-bits and
stops when no such counter is left (section 6.1).
"""

from __future__ import annotations

import enum

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from forecourt.keys.crypto import Algorithm
from forecourt.keys.errors import InvalidKey
from forecourt.keys.security_module import DukptKeyUsage

__all__ = [
    "INITIAL_KEY_ID_LENGTH",
    "KSN_LENGTH",
    "MAX_COUNTER_ONES",
    "aes_initial_key",
    "aes_working_key",
    "aes_working_key_from_initial",
    "counter_of",
    "initial_key_id_of",
    "is_valid_counter",
    "ksn_of",
    "next_counter",
]

KSN_LENGTH = 12
INITIAL_KEY_ID_LENGTH = 8
COUNTER_BITS = 32
MAX_COUNTER_ONES = 16

_VERSION = 0x01
_KEY_DERIVATION = 0x8000  # intermediate derivation keys
_KEY_DERIVATION_INITIAL = 0x8001  # the initial key, from the BDK


class _AlgorithmIndicator(enum.Enum):
    """Derivation data bytes 4-5: the algorithm of the key being derived (table 3)."""

    TDES2 = 0x0000
    TDES3 = 0x0001
    AES128 = 0x0002
    AES192 = 0x0003
    AES256 = 0x0004


_INDICATOR = {
    Algorithm.TDES2: _AlgorithmIndicator.TDES2,
    Algorithm.TDES3: _AlgorithmIndicator.TDES3,
    Algorithm.AES128: _AlgorithmIndicator.AES128,
    Algorithm.AES192: _AlgorithmIndicator.AES192,
    Algorithm.AES256: _AlgorithmIndicator.AES256,
}
# weakest first: a working key may not be stronger than the key it comes from
_STRENGTH = (
    Algorithm.TDES2,
    Algorithm.TDES3,
    Algorithm.AES128,
    Algorithm.AES192,
    Algorithm.AES256,
)


def _check_bdk(bdk: bytes) -> Algorithm:
    for algorithm in (Algorithm.AES128, Algorithm.AES192, Algorithm.AES256):
        if len(bdk) == algorithm.key_length:
            return algorithm
    raise InvalidKey(f"AES DUKPT BDK must be 16, 24 or 32 bytes, got {len(bdk)}")


def _check_ksn(ksn: bytes) -> None:
    if len(ksn) != KSN_LENGTH:
        raise InvalidKey(f"AES DUKPT KSN must be {KSN_LENGTH} bytes, got {len(ksn)}")


def _derivation_data(usage: int, key_type: Algorithm, tail: bytes) -> bytearray:
    """Section 6.3.2: version, block counter (set per block), key usage, algorithm,
    length in bits, then 8 bytes of the initial key ID or of its rightmost four
    bytes and the counter."""
    data = bytearray(16)
    data[0] = _VERSION
    data[2:4] = usage.to_bytes(2, "big")
    data[4:6] = _INDICATOR[key_type].value.to_bytes(2, "big")
    data[6:8] = (8 * key_type.key_length).to_bytes(2, "big")
    data[8:16] = tail
    return data


def _derive(key: bytes, key_type: Algorithm, data: bytearray) -> bytes:
    """Section 6.3.1: AES-ECB of the derivation data under `key`, the block counter
    1, 2, ... until `key_type`'s length is covered."""
    enc = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    out = bytearray()
    block = 1
    while len(out) < key_type.key_length:
        data[1] = block
        out += enc.update(bytes(data))
        block += 1
    return bytes(out[: key_type.key_length])


def ksn_of(initial_key_id: bytes, counter: int) -> bytes:
    """The 12-byte KSN a terminal sends: initial key ID and counter."""
    if len(initial_key_id) != INITIAL_KEY_ID_LENGTH:
        raise InvalidKey(f"AES DUKPT initial key ID must be 8 bytes, got {len(initial_key_id)}")
    if not 0 <= counter < 1 << COUNTER_BITS:
        raise InvalidKey("AES DUKPT counter must fit in 32 bits")
    return initial_key_id + counter.to_bytes(4, "big")


def initial_key_id_of(ksn: bytes) -> bytes:
    _check_ksn(ksn)
    return ksn[:INITIAL_KEY_ID_LENGTH]


def counter_of(ksn: bytes) -> int:
    _check_ksn(ksn)
    return int.from_bytes(ksn[INITIAL_KEY_ID_LENGTH:], "big")


def is_valid_counter(counter: int) -> bool:
    """Whether a terminal would use this counter: non-zero, 32 bits, at most 16
    one-bits."""
    return 0 < counter < 1 << COUNTER_BITS and counter.bit_count() <= MAX_COUNTER_ONES


def next_counter(counter: int) -> int | None:
    """The counter after `counter` (values with more than 16 one-bits skipped, by
    adding the lowest one-bit as the terminal does), or None when exhausted."""
    nxt = counter + 1
    while nxt < 1 << COUNTER_BITS and nxt.bit_count() > MAX_COUNTER_ONES:
        nxt += nxt & -nxt
    return nxt if nxt < 1 << COUNTER_BITS else None


def aes_initial_key(bdk: bytes, initial_key_id: bytes, key_type: Algorithm | None = None) -> bytes:
    """The terminal's initial key (section 6.3.3): derived from the BDK with usage
    8001 and the initial key ID; of the BDK's own type unless `key_type` says."""
    bdk_type = _check_bdk(bdk)
    if len(initial_key_id) != INITIAL_KEY_ID_LENGTH:
        raise InvalidKey(f"AES DUKPT initial key ID must be 8 bytes, got {len(initial_key_id)}")
    kind = key_type or bdk_type
    if not kind.is_aes:
        raise InvalidKey("AES DUKPT initial key must be an AES key")
    return _derive(bdk, kind, _derivation_data(_KEY_DERIVATION_INITIAL, kind, initial_key_id))


def aes_working_key_from_initial(
    initial_key: bytes, ksn: bytes, usage: DukptKeyUsage, key_type: Algorithm
) -> bytes:
    """The working key for `ksn` from the terminal's initial key (section 6.5, "host
    security module algorithm"): the intermediate derivation keys walked from the
    counter's highest one-bit down, then the working key for `usage` and
    `key_type` (which may be TDES: AES DUKPT derives 2- and 3-key TDES keys too)."""
    kind = _check_bdk(initial_key)
    counter = counter_of(ksn)
    if not is_valid_counter(counter):
        raise InvalidKey("AES DUKPT counter is zero or has more than 16 one-bits")
    if _STRENGTH.index(key_type) > _STRENGTH.index(kind):
        raise InvalidKey("AES DUKPT working key cannot be stronger than the initial key")
    id_tail = ksn[4:INITIAL_KEY_ID_LENGTH]
    key = initial_key
    walked = 0
    for bit in range(COUNTER_BITS - 1, -1, -1):
        if counter >> bit & 1:
            walked |= 1 << bit
            data = _derivation_data(_KEY_DERIVATION, kind, id_tail + walked.to_bytes(4, "big"))
            key = _derive(key, kind, data)
    data = _derivation_data(usage.value, key_type, id_tail + counter.to_bytes(4, "big"))
    return _derive(key, key_type, data)


def aes_working_key(
    bdk: bytes, ksn: bytes, usage: DukptKeyUsage, key_type: Algorithm = Algorithm.AES128
) -> bytes:
    """The working key for `ksn` and `usage` straight from the BDK."""
    return aes_working_key_from_initial(
        aes_initial_key(bdk, initial_key_id_of(ksn)), ksn, usage, key_type
    )


# -- for a security module that derives in its own ECB (keys/pkcs11_token.py) --------

KEY_DERIVATION = _KEY_DERIVATION
KEY_DERIVATION_INITIAL = _KEY_DERIVATION_INITIAL


def derivation_blocks(usage: int, key_type: Algorithm, tail: bytes) -> bytes:
    """The derivation data blocks (block counter 1, 2, ...) whose AES-ECB under the
    current key is the derived key of `key_type` (truncated to its length): what a
    token's CKM_AES_ECB_ENCRYPT_DATA is given, so the key never leaves it."""
    data = _derivation_data(usage, key_type, tail)
    blocks = bytearray()
    for block in range(1, -(-key_type.key_length // 16) + 1):
        data[1] = block
        blocks += data
    return bytes(blocks)
