"""PIN blocks (ISO 9564-1): format 0 under TDES, format 4 under AES, and translation.

Written from the standard rather than through psec, whose error texts quote PIN
digits and which refuses PANs shorter than 13 digits. The clear PIN exists only
inside one call, as a bytearray of digit values that is zeroed before the call
returns; every failure is a `PinBlockError` with a fixed message raised outside
any handler, so no traceback carries a PIN, a PIN field or a key.

`PinTranslator.translate(pin_block, pan, from_key, to_key)` is the one operation
the switch needs (TPK -> ZPK); `SoftwarePinTranslator` does it in process, and a
security module can stand behind the same protocol.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Protocol

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from forecourt.keys.crypto import Algorithm, check_key, kcv, tdes24
from forecourt.keys.errors import KeysError

MIN_PIN, MAX_PIN = 4, 12

Fill = Callable[[int], bytes]  # n random bytes: format 4's random pad


class PinBlockError(KeysError):
    """A PIN block or PIN does not fit its format (no digits in the message)."""


class PinKey:
    """A TPK or ZPK ready for use: ECB contexts made once, so a PIN block costs
    block-cipher calls and no key schedule. The repr names the key by KCV only."""

    __slots__ = ("_dec", "_enc", "_lock", "algorithm", "kcv", "version")

    def __init__(self, key: bytes, algorithm: Algorithm, version: int = 0) -> None:
        check_key(key, algorithm)
        self.algorithm = algorithm
        self.version = version
        self.kcv = kcv(key, algorithm)
        if algorithm.is_aes:
            cipher = Cipher(algorithms.AES(key), modes.ECB())
        else:
            cipher = Cipher(TripleDES(tdes24(key)), modes.ECB())
        # ECB keeps no state between calls to update: one context serves every block
        self._enc = cipher.encryptor()
        self._dec = cipher.decryptor()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"PinKey({self.algorithm.value}, v{self.version}, kcv={self.kcv})"

    @property
    def block_length(self) -> int:
        """8 (format 0, TDES) or 16 (format 4, AES)."""
        return 16 if self.algorithm.is_aes else 8

    def encrypt(self, data: bytes | bytearray) -> bytes:
        with self._lock:
            return self._enc.update(bytes(data))

    def decrypt(self, data: bytes | bytearray) -> bytes:
        with self._lock:
            return self._dec.update(bytes(data))


class PinTranslator(Protocol):
    """Re-encrypts a PIN block from one key to another without showing the PIN."""

    def translate(self, pin_block: bytes, pan: str, from_key: PinKey, to_key: PinKey) -> bytes: ...


class SoftwarePinTranslator:
    """`PinTranslator` in this process: the clear PIN lives for one call."""

    def __init__(self, fill: Fill = os.urandom) -> None:
        self._fill = fill

    def translate(self, pin_block: bytes, pan: str, from_key: PinKey, to_key: PinKey) -> bytes:
        digits = open_block(from_key, pin_block, pan)
        try:
            return seal_block(to_key, digits, pan, self._fill)
        finally:
            digits[:] = bytes(len(digits))


# -- the account number fields ----------------------------------------------------


def _pan_digits(pan: str) -> str:
    if not (1 <= len(pan) <= 19) or not pan.isascii() or not pan.isdigit():
        raise PinBlockError("PAN does not fit the PIN block format")
    return pan


def pan_field_0(pan: str) -> bytes:
    """Format 0: four zero nibbles, then the 12 rightmost PAN digits excluding the
    check digit, left-filled with zeros when the PAN is shorter."""
    digits = _pan_digits(pan)[:-1][-12:].rjust(12, "0")
    return bytes.fromhex("0000" + digits)


def pan_field_4(pan: str) -> bytes:
    """Format 4: length nibble M (PAN length - 12, 0 under 12 digits, the PAN then
    left-filled with zeros to 12), the PAN, zero nibbles to 32."""
    digits = _pan_digits(pan)
    return bytes.fromhex((str(max(0, len(digits) - 12)) + digits.rjust(12, "0")).ljust(32, "0"))


# -- plain text PIN fields (digits as values 0..9, never text) ------------------------


def _nibbles_to_bytes(nibbles: bytearray) -> bytearray:
    out = bytearray((nibbles[i] << 4) | nibbles[i + 1] for i in range(0, len(nibbles), 2))
    nibbles[:] = bytes(len(nibbles))
    return out


def _nibbles_of(data: bytes | bytearray) -> bytearray:
    out = bytearray(2 * len(data))
    for i, b in enumerate(data):
        out[2 * i], out[2 * i + 1] = b >> 4, b & 0x0F
    return out


def _pin_field(control: int, digits: bytearray, fill_nibble: int) -> bytearray:
    """Control nibble, length nibble, the digits, fill to 16 nibbles (8 bytes)."""
    if not (MIN_PIN <= len(digits) <= MAX_PIN) or any(d > 9 for d in digits):
        raise PinBlockError("PIN does not fit the PIN block format")
    nibbles = bytearray([control, len(digits)]) + digits
    nibbles += bytes([fill_nibble]) * (16 - len(nibbles))
    return _nibbles_to_bytes(nibbles)


def _digits_of_field(field: bytes | bytearray, control: int, fill_nibble: int) -> bytearray | None:
    """The PIN digits of a plain text PIN field's first 8 bytes, or None if the
    field is not of the format (wrong key, wrong PAN, corrupted)."""
    nibbles = _nibbles_of(field[:8])
    try:
        length = nibbles[1]
        if nibbles[0] != control or not (MIN_PIN <= length <= MAX_PIN):
            return None
        digits = nibbles[2 : 2 + length]
        if any(d > 9 for d in digits) or any(n != fill_nibble for n in nibbles[2 + length :]):
            digits[:] = bytes(len(digits))
            return None
        return digits
    finally:
        nibbles[:] = bytes(len(nibbles))


def _xor(a: bytes | bytearray, b: bytes | bytearray) -> bytearray:
    return bytearray(x ^ y for x, y in zip(a, b, strict=True))


# -- blocks ---------------------------------------------------------------------------


def seal_block(key: PinKey, digits: bytearray, pan: str, fill: Fill = os.urandom) -> bytes:
    """Encipher PIN digits under `key`: format 0 (TDES) or format 4 (AES)."""
    if key.algorithm.is_aes:
        pin_field = _pin_field(4, digits, 0xA) + fill(8)
        if len(pin_field) != 16:
            raise PinBlockError("format 4 random fill must be 8 bytes")
        try:
            return key.encrypt(_xor(key.encrypt(pin_field), pan_field_4(pan)))
        finally:
            pin_field[:] = bytes(16)
    clear = _pin_field(0, digits, 0xF)
    try:
        return key.encrypt(_xor(clear, pan_field_0(pan)))
    finally:
        clear[:] = bytes(8)


def open_block(key: PinKey, block: bytes, pan: str) -> bytearray:
    """The PIN digits a block holds under `key` (zero them when done)."""
    digits: bytearray | None = None
    if len(block) == key.block_length:
        if key.algorithm.is_aes:
            pin_field = bytearray(key.decrypt(_xor(key.decrypt(block), pan_field_4(pan))))
            digits = _digits_of_field(pin_field, 4, 0xA)
        else:
            pin_field = _xor(key.decrypt(block), pan_field_0(pan))
            digits = _digits_of_field(pin_field, 0, 0xF)
        pin_field[:] = bytes(len(pin_field))
    if digits is None:
        raise PinBlockError("PIN block does not decode under this key")
    return digits


# -- with clear keys and PIN text (simulators, tests) ------------------------------------


def _digits_of_text(pin: str) -> bytearray:
    if not pin.isascii() or not pin.isdigit():
        raise PinBlockError("PIN or PAN does not fit the PIN block format")
    return bytearray(ord(c) - 0x30 for c in pin)


def encrypt_pin_block(
    key: bytes, algorithm: Algorithm, pin: str, pan: str, fill: Fill = os.urandom
) -> bytes:
    """ISO format 0 under a TDES key (8 bytes), ISO format 4 under an AES key (16 bytes)."""
    digits = _digits_of_text(pin)
    try:
        return seal_block(PinKey(key, algorithm), digits, pan, fill)
    finally:
        digits[:] = bytes(len(digits))


def decrypt_pin_block(key: bytes, algorithm: Algorithm, block: bytes, pan: str) -> str:
    """The PIN in a block (for a party that verifies PINs: the host simulator)."""
    digits = open_block(PinKey(key, algorithm), block, pan)
    try:
        return "".join(chr(0x30 + d) for d in digits)
    finally:
        digits[:] = bytes(len(digits))


def translate_pin_block(
    from_key: bytes,
    from_algorithm: Algorithm,
    to_key: bytes,
    to_algorithm: Algorithm,
    block: bytes,
    pan: str,
) -> bytes:
    """Re-encrypt a PIN block from one key to another (TPK -> ZPK)."""
    return SoftwarePinTranslator().translate(
        block, pan, PinKey(from_key, from_algorithm), PinKey(to_key, to_algorithm)
    )
