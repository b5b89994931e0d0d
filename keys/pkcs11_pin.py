"""PIN translation for the pkcs11 backend on test systems only.

PKCS#11 has no PIN-block translation: a token can decrypt a block and encrypt
another, but the clear PIN block is then in the caller's memory, which is what a
PCI PIN assessor forbids. So `Pkcs11Module` refuses translation unless
`[keys.pkcs11] software_pin_translation = true`; then the keys stay in the token
(ECB decrypt and encrypt there) and the ISO 9564 format work (keys/pin.py) runs
in this process, clear PIN included. Not PCI compliant: docs/hsm.md.
"""

from __future__ import annotations

import threading

from forecourt.keys.crypto import Algorithm
from forecourt.keys.pin import Fill, PinKey, open_block, seal_block
from forecourt.keys.pkcs11_token import TokenKey
from pkcs11 import Mechanism

__all__ = ["TokenPinKey", "translate_in_process"]


class TokenPinKey(PinKey):
    """A PIN key whose ECB runs in the token: what keys/pin.py's format code calls."""

    def __init__(self, key: TokenKey, algorithm: Algorithm, kcv: str) -> None:
        # no clear key, so PinKey's own __init__ (which prepares clear-key contexts)
        # is not called; the attributes keys/pin.py reads are set here
        self.algorithm = algorithm
        self.is_aes = algorithm.is_aes
        self.version = 0
        self.kcv = kcv
        self._lock = threading.Lock()
        self._token_key = key
        self._mechanism = Mechanism.AES_ECB if algorithm.is_aes else Mechanism.DES3_ECB

    def encrypt(self, data: bytes | bytearray) -> bytes:
        return bytes(self._token_key.encrypt(bytes(data), mechanism=self._mechanism))

    def decrypt(self, data: bytes | bytearray) -> bytes:
        return bytes(self._token_key.decrypt(bytes(data), mechanism=self._mechanism))


def translate_in_process(
    source: TokenPinKey, destination: TokenPinKey, pin_block: bytes, pan: str, fill: Fill
) -> bytes:
    """The block opened under `source` and sealed under `destination`; the digits are
    zeroed before returning (the cipher outputs cannot be)."""
    digits = open_block(source, pin_block, pan)
    try:
        return seal_block(destination, digits, pan, fill)
    finally:
        digits[:] = bytes(len(digits))
