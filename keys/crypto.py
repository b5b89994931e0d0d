"""Key algorithms, key generation and KCVs on `cryptography`.

TDES always runs through the decrepit module with 24-byte keys, so no
deprecation warning is raised by our own code.
"""

from __future__ import annotations

import enum
import hmac
import os

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from forecourt.keys.errors import InvalidKey


class Algorithm(enum.Enum):
    """Key algorithm and length, as stored with every key."""

    TDES2 = "tdes2"
    TDES3 = "tdes3"
    AES128 = "aes128"
    AES192 = "aes192"
    AES256 = "aes256"

    @property
    def key_length(self) -> int:
        return _LENGTHS[self]

    @property
    def is_aes(self) -> bool:
        return self in (Algorithm.AES128, Algorithm.AES192, Algorithm.AES256)

    @property
    def tr31_code(self) -> str:
        """TR-31 header algorithm byte: 'A' (AES) or 'T' (TDES)."""
        return "A" if self.is_aes else "T"


_LENGTHS = {
    Algorithm.TDES2: 16,
    Algorithm.TDES3: 24,
    Algorithm.AES128: 16,
    Algorithm.AES192: 24,
    Algorithm.AES256: 32,
}


class Family(enum.Enum):
    """What an operator chooses for a terminal: the whole hierarchy is TDES or AES."""

    TDES = "tdes"
    AES = "aes"

    @property
    def kek_algorithm(self) -> Algorithm:
        return Algorithm.TDES2 if self is Family.TDES else Algorithm.AES256

    @property
    def working_algorithm(self) -> Algorithm:
        return working_algorithm_under(self.kek_algorithm)


def working_algorithm_under(master: Algorithm) -> Algorithm:
    """Working keys under a KEK/ZMK of `master`: retail MAC needs a 2-key TDES
    key; AES working keys are AES-128, under an AES KEK/ZMK (a KBPK at least as
    strong as what it protects)."""
    return Algorithm.AES128 if master.is_aes else Algorithm.TDES2


def check_key(key: bytes, algorithm: Algorithm) -> None:
    if len(key) != algorithm.key_length:
        raise InvalidKey(
            f"{algorithm.value} key must be {algorithm.key_length} bytes, got {len(key)}"
        )


def adjust_parity(key: bytes) -> bytes:
    """Set odd parity on every byte, as DES keys conventionally carry."""
    out = bytearray(key)
    for i, b in enumerate(out):
        ones = bin(b >> 1).count("1")
        out[i] = (b & 0xFE) | (0 if ones % 2 else 1)
    return bytes(out)


def tdes24(key: bytes) -> bytes:
    """Expand a 1/2/3-key TDES key to the 24 bytes `cryptography` wants."""
    if len(key) == 8:
        return key * 3
    if len(key) == 16:
        return key + key[:8]
    if len(key) == 24:
        return key
    raise InvalidKey(f"TDES key must be 8, 16 or 24 bytes, got {len(key)}")


def xor(a: bytes, b: bytes) -> bytes:
    if len(a) != len(b):
        raise InvalidKey("components differ in length")
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


def generate_key(algorithm: Algorithm) -> bytes:
    """Fresh random key (OS CSPRNG, as `cryptography` itself uses)."""
    n = algorithm.key_length
    if algorithm.is_aes:
        return os.urandom(n)
    while True:
        key = adjust_parity(os.urandom(n))
        parts = [key[i : i + 8] for i in range(0, n, 8)]
        if len(set(parts)) == len(parts):  # never a degenerate (single-DES) TDES key
            return key


def tdes_ecb_encrypt(key: bytes, data: bytes) -> bytes:
    enc = Cipher(TripleDES(tdes24(key)), modes.ECB()).encryptor()
    return enc.update(data) + enc.finalize()


def aes_cmac_full(key: bytes, data: bytes) -> bytes:
    """Full 16-byte AES-CMAC; used for KCVs (the hot path is in `mac`)."""
    from cryptography.hazmat.primitives.cmac import CMAC

    c = CMAC(algorithms.AES(key))
    c.update(data)
    return c.finalize()


def kcv(key: bytes, algorithm: Algorithm | None = None) -> str:
    """Key check value, 6 upper-case hex digits.

    TDES: first 3 bytes of the key encrypting a zero block. AES: first 3 bytes of
    the AES-CMAC of a zero block. Without an algorithm, 32-byte keys are AES and
    the rest TDES.
    """
    if algorithm is None:
        is_aes = len(key) == 32
    else:
        check_key(key, algorithm)
        is_aes = algorithm.is_aes
    if is_aes:
        if len(key) not in (16, 24, 32):
            raise InvalidKey(f"AES key must be 16, 24 or 32 bytes, got {len(key)}")
        return aes_cmac_full(key, bytes(16))[:3].hex().upper()
    return tdes_ecb_encrypt(key, bytes(8))[:3].hex().upper()


def kcv_matches(expected: str, actual: str) -> bool:
    """Compare a KCV given by a person (4 or 6 hex digits, any case) to ours."""
    e = expected.strip().upper()
    if len(e) < 4 or len(e) > len(actual):
        return False
    return hmac.compare_digest(e, actual[: len(e)])
