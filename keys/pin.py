"""PIN blocks (ISO 9564-1): format 0 under TDES, format 4 under AES, and translation.

Written from the standard rather than through psec, whose error texts quote PIN
digits and which refuses PANs shorter than 13 digits. The clear PIN exists only
inside one call (as integers and the cipher's output, dropped when it returns:
Python cannot wipe immutable objects, so nothing keeps them); every failure is
a `PinBlockError` with a fixed message raised outside any handler, so no
traceback carries a PIN, a PIN field or a key.

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

    __slots__ = ("_dec", "_enc", "_lock", "algorithm", "is_aes", "kcv", "version")

    def __init__(self, key: bytes, algorithm: Algorithm, version: int = 0) -> None:
        check_key(key, algorithm)
        self.algorithm = algorithm
        self.is_aes = algorithm.is_aes
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
        return 16 if self.is_aes else 8

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
        return _seal(to_key, _open(from_key, pin_block, pan), pan, self._fill)


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


# -- plain text PIN fields ----------------------------------------------------------
# The first 8 bytes of a PIN field as a 64-bit integer: control nibble C, length
# nibble L, L digit nibbles, fill nibbles (F in format 0, A in format 4). A PIN
# travels between `_open` and `_seal` as (L, digits as one integer of L nibbles).

_FILL = {0: 0xFFFF_FFFF_FFFF_FFFF, 4: 0xAAAA_AAAA_AAAA_AAAA}
Pin = tuple[int, int]  # (length, digit nibbles)


def _field(control: int, pin: Pin) -> int:
    length, digits = pin
    fill_bits = 4 * (14 - length)
    return (
        (control << 60)
        | (length << 56)
        | (digits << fill_bits)
        | (_FILL[control] & ((1 << fill_bits) - 1))
    )


def _pin_of(field: int, control: int) -> Pin | None:
    """The PIN a field holds, or None if it is not of the format (wrong key,
    wrong PAN, corrupted)."""
    length = (field >> 56) & 0xF
    if field >> 60 != control or not (MIN_PIN <= length <= MAX_PIN):
        return None
    fill_bits = 4 * (14 - length)
    mask = (1 << fill_bits) - 1
    if field & mask != _FILL[control] & mask:
        return None
    digits = (field >> fill_bits) & ((1 << (4 * length)) - 1)
    for shift in range(0, 4 * length, 4):
        if (digits >> shift) & 0xF > 9:
            return None
    return length, digits


def _int(data: bytes) -> int:
    return int.from_bytes(data, "big")


# -- blocks ---------------------------------------------------------------------------


def _seal(key: PinKey, pin: Pin, pan: str, fill: Fill) -> bytes:
    if key.is_aes:
        pad = fill(8)
        if len(pad) != 8:
            raise PinBlockError("format 4 random fill must be 8 bytes")
        pin_field = (_field(4, pin) << 64) | _int(pad)
        a = _int(key.encrypt(pin_field.to_bytes(16, "big")))
        return key.encrypt((a ^ _int(pan_field_4(pan))).to_bytes(16, "big"))
    return key.encrypt((_field(0, pin) ^ _int(pan_field_0(pan))).to_bytes(8, "big"))


def _open(key: PinKey, block: bytes, pan: str) -> Pin:
    pin: Pin | None = None
    if len(block) == key.block_length:
        if key.is_aes:
            b = _int(key.decrypt(block)) ^ _int(pan_field_4(pan))
            pin = _pin_of(_int(key.decrypt(b.to_bytes(16, "big"))) >> 64, 4)
        else:
            pin = _pin_of(_int(key.decrypt(block)) ^ _int(pan_field_0(pan)), 0)
    if pin is None:
        raise PinBlockError("PIN block does not decode under this key")
    return pin


def seal_block(key: PinKey, digits: bytearray, pan: str, fill: Fill = os.urandom) -> bytes:
    """Encipher PIN digits (values 0..9) under `key`: format 0 (TDES) or 4 (AES)."""
    if not (MIN_PIN <= len(digits) <= MAX_PIN) or any(d > 9 for d in digits):
        raise PinBlockError("PIN does not fit the PIN block format")
    value = 0
    for d in digits:
        value = (value << 4) | d
    return _seal(key, (len(digits), value), pan, fill)


def open_block(key: PinKey, block: bytes, pan: str) -> bytearray:
    """The PIN digits (values 0..9) a block holds under `key`; zero them when done."""
    length, value = _open(key, block, pan)
    return bytearray((value >> (4 * (length - 1 - i))) & 0xF for i in range(length))


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
