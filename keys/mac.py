"""MAC algorithms of the switch, prepared per key for speed.

- Retail MAC: ISO/IEC 9797-1 MAC algorithm 3, padding method 1, 2-key TDES
  (single-DES CBC under K1, then decrypt K2 / encrypt K1 on the last block).
- AES-CMAC: NIST SP 800-38B.

Both are truncated to 8 bytes (field 64/128). A prepared object keeps its cipher
contexts open for the life of the key: creating a cipher context (and its key
schedule) costs more than MACing a 256-byte message. Each object keeps one
long-lived CBC encryptor and restarts the chain for each message by XORing the
previous final ciphertext block into the first block: CBC then computes exactly
what a fresh zero-IV context would, without paying for a new context. A lock
makes this safe from several threads.
"""

from __future__ import annotations

import abc
import enum
import hmac
import threading

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from forecourt.keys.crypto import Algorithm, kcv
from forecourt.keys.errors import InvalidKey

MAC_LENGTH = 8


class MacAlgorithm(enum.Enum):
    RETAIL = "retail"
    CMAC = "cmac"

    @classmethod
    def for_key(cls, algorithm: Algorithm) -> MacAlgorithm:
        if algorithm is Algorithm.TDES2:
            return cls.RETAIL
        if algorithm.is_aes:
            return cls.CMAC
        raise InvalidKey(f"no MAC algorithm for {algorithm.value} keys (retail MAC is 2-key TDES)")


class PreparedMac(abc.ABC):
    """A MAC key ready to use: `generate(data) -> 8 bytes`, `verify(data, mac)`."""

    algorithm: MacAlgorithm
    kcv: str

    @abc.abstractmethod
    def generate(self, data: bytes) -> bytes: ...

    def verify(self, data: bytes, mac: bytes) -> bool:
        """Constant-time comparison of `mac` with the MAC of `data`."""
        return hmac.compare_digest(self.generate(data), mac)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(kcv={self.kcv})"


class RetailMac(PreparedMac):
    """ISO 9797-1 algorithm 3 with a 2-key TDES key (K1 | K2)."""

    __slots__ = ("_cbc", "_chain", "_dec2", "_enc1", "_lock", "algorithm", "kcv")

    def __init__(self, key: bytes) -> None:
        if len(key) != 16:
            raise InvalidKey(f"retail MAC needs a 16-byte 2-key TDES key, got {len(key)} bytes")
        k1, k2 = key[:8], key[8:]
        if k1 == k2:
            raise InvalidKey("retail MAC needs two different key halves")
        self.algorithm = MacAlgorithm.RETAIL
        self.kcv = kcv(key, Algorithm.TDES2)
        # TripleDES with K1|K1|K1 is single DES under K1.
        self._cbc = Cipher(TripleDES(k1 * 3), modes.CBC(bytes(8))).encryptor()
        self._dec2 = Cipher(TripleDES(k2 * 3), modes.ECB()).decryptor()
        self._enc1 = Cipher(TripleDES(k1 * 3), modes.ECB()).encryptor()
        self._chain = 0
        self._lock = threading.Lock()

    def generate(self, data: bytes) -> bytes:
        n = len(data)
        rem = n % 8
        if n == 0:
            data = bytes(8)  # padding method 1 of an empty string: one zero block
        elif rem:
            data = data + bytes(8 - rem)
        head = int.from_bytes(data[:8], "big")
        with self._lock:
            out = self._cbc.update((head ^ self._chain).to_bytes(8, "big") + data[8:])
            last = out[-8:]
            self._chain = int.from_bytes(last, "big")
            return self._enc1.update(self._dec2.update(last))


def _dbl(block: int) -> int:
    """Doubling in GF(2^128), for the CMAC subkeys."""
    block <<= 1
    if block >> 128:
        block = (block & ((1 << 128) - 1)) ^ 0x87
    return block


class AesCmac(PreparedMac):
    """AES-CMAC (SP 800-38B) with subkeys computed once, truncated to 8 bytes."""

    __slots__ = ("_cbc", "_chain", "_k1", "_k2", "_lock", "algorithm", "kcv")

    def __init__(self, key: bytes) -> None:
        if len(key) not in (16, 24, 32):
            raise InvalidKey(f"AES key must be 16, 24 or 32 bytes, got {len(key)}")
        self.algorithm = MacAlgorithm.CMAC
        ecb = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
        ell = int.from_bytes(ecb.update(bytes(16)), "big")
        self._k1 = _dbl(ell)
        self._k2 = _dbl(self._k1)
        self._cbc = Cipher(algorithms.AES(key), modes.CBC(bytes(16))).encryptor()
        self._chain = 0
        self._lock = threading.Lock()
        self.kcv = self.tag(bytes(16))[:3].hex().upper()

    def tag(self, data: bytes) -> bytes:
        """The full 16-byte CMAC."""
        n = len(data)
        if n and n % 16 == 0:
            sub = self._k1
        else:
            data = data + b"\x80" + bytes(15 - n % 16)
            sub = self._k2
        with self._lock:
            chain = self._chain
            if len(data) == 16:
                msg = (int.from_bytes(data, "big") ^ chain ^ sub).to_bytes(16, "big")
            else:
                first = (int.from_bytes(data[:16], "big") ^ chain).to_bytes(16, "big")
                last = (int.from_bytes(data[-16:], "big") ^ sub).to_bytes(16, "big")
                msg = first + data[16:-16] + last
            out = self._cbc.update(msg)[-16:]
            self._chain = int.from_bytes(out, "big")
            return out

    def generate(self, data: bytes) -> bytes:
        return self.tag(data)[:MAC_LENGTH]


def prepare_mac(key: bytes, algorithm: MacAlgorithm) -> PreparedMac:
    """A prepared MAC object for `key`; the object does not keep the key bytes."""
    if algorithm is MacAlgorithm.RETAIL:
        return RetailMac(key)
    return AesCmac(key)


def retail_mac(key: bytes, data: bytes) -> bytes:
    """One-shot ISO 9797-1 algorithm 3 MAC (8 bytes); prepare the key for repeated use."""
    return RetailMac(key).generate(data)


def aes_cmac(key: bytes, data: bytes, length: int = MAC_LENGTH) -> bytes:
    """One-shot AES-CMAC, truncated to `length` bytes (16 for the full tag)."""
    return AesCmac(key).tag(data)[:length]
