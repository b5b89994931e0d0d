"""The sign-on key: a MAC key derived from a terminal's KEK, for sign-on proofs only.

A sign-on must prove that it comes from the terminal holding the KEK, or anyone
naming a terminal id could rotate its keys. The KEK itself never MACs anything
(a key has one use); instead both sides derive a sign-on key from it with the
NIST SP 800-108 counter-mode KDF, PRF = CMAC under the KEK (TDES-CMAC for a TDES
KEK, AES-CMAC for an AES KEK: the derivation TR-31 versions B and D already make
every terminal implement for its key blocks):

    K(i) = CMAC(KEK, [i]_8 || "forecourt sign-on MAC" || 0x00 || terminal id || [L]_16)

L is 128 bits: a 2-key TDES key (odd parity set; retail MAC) under a TDES KEK,
an AES-128 key (AES-CMAC) under an AES KEK. The derivation is one-way: the sign-on
key gives nothing of the KEK, and the terminal id in the context gives terminals
that share a KEK (test keys) different sign-on keys.
"""

from __future__ import annotations

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import algorithms
from cryptography.hazmat.primitives.cmac import CMAC
from forecourt.keys.crypto import Algorithm, adjust_parity, tdes24
from forecourt.keys.errors import InvalidKey
from forecourt.keys.mac import MacAlgorithm, PreparedMac, prepare_mac

__all__ = ["SIGN_ON_LABEL", "kdf_counter_cmac", "sign_on_key", "sign_on_mac"]

SIGN_ON_LABEL = b"forecourt sign-on MAC"
_KEY_BITS = 128

_BY_LENGTH = {16: Algorithm.TDES2, 24: Algorithm.TDES3, 32: Algorithm.AES256}


def kdf_counter_cmac(
    key: bytes, algorithm: Algorithm, label: bytes, context: bytes, bits: int
) -> bytes:
    """NIST SP 800-108 KDF in counter mode, PRF = CMAC (r = 8, L in 16 bits,
    counter before the fixed input)."""
    if bits <= 0 or bits % 8 or bits >= 1 << 16:
        raise InvalidKey("derived key length must be a positive whole number of bytes")
    fixed = label + b"\x00" + context + bits.to_bytes(2, "big")
    out = b""
    counter = 1
    while len(out) * 8 < bits:
        prf = CMAC(algorithms.AES(key) if algorithm.is_aes else TripleDES(tdes24(key)))
        prf.update(bytes([counter]) + fixed)
        out += prf.finalize()
        counter += 1
    return out[: bits // 8]


def sign_on_key(kek: bytes, terminal_id: str, algorithm: Algorithm | None = None) -> bytes:
    """The clear sign-on key of `terminal_id` under `kek` (algorithm from its length:
    16 bytes TDES-2, 24 TDES-3, 32 AES-256)."""
    kek_algorithm = algorithm or _BY_LENGTH.get(len(kek))
    if kek_algorithm is None or len(kek) != kek_algorithm.key_length:
        raise InvalidKey(f"a KEK is 16, 24 or 32 bytes, not {len(kek)}")
    key = kdf_counter_cmac(
        kek, kek_algorithm, SIGN_ON_LABEL, terminal_id.encode("ascii"), _KEY_BITS
    )
    return key if kek_algorithm.is_aes else adjust_parity(key)


def sign_on_mac(kek: bytes, terminal_id: str, algorithm: Algorithm | None = None) -> PreparedMac:
    """The sign-on key prepared for MACs: retail MAC under a TDES KEK, CMAC under AES."""
    key = sign_on_key(kek, terminal_id, algorithm)
    aes = (algorithm or _BY_LENGTH[len(kek)]).is_aes
    return prepare_mac(key, MacAlgorithm.CMAC if aes else MacAlgorithm.RETAIL)
