"""PIN blocks through psec: ISO 9564 format 0 under TDES, format 4 under AES.

psec's error texts quote PIN digits, so every psec error becomes a PinBlockError
with a fixed message. Used by the terminal simulator (encrypt under the TPK) and
the switch (translate from the terminal's TPK to the acquirer's ZPK).
"""

from __future__ import annotations

import psec
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, modes
from forecourt.keys.crypto import Algorithm, check_key, tdes24
from forecourt.keys.errors import KeysError


class PinBlockError(KeysError):
    """A PIN block or PIN does not fit its format (no digits in the message)."""


def _tdes(key: bytes, data: bytes, encrypt: bool) -> bytes:
    cipher = Cipher(TripleDES(tdes24(key)), modes.ECB())
    ctx = cipher.encryptor() if encrypt else cipher.decryptor()
    return ctx.update(data) + ctx.finalize()


def encrypt_pin_block(key: bytes, algorithm: Algorithm, pin: str, pan: str) -> bytes:
    """ISO format 0 under a TDES key (8 bytes), ISO format 4 under an AES key (16 bytes)."""
    check_key(key, algorithm)
    try:
        if algorithm.is_aes:
            return bytes(psec.pinblock.encipher_pinblock_iso_4(key, pin, pan))
        return _tdes(key, bytes(psec.pinblock.encode_pinblock_iso_0(pin, pan)), encrypt=True)
    except (ValueError, TypeError):
        raise PinBlockError("PIN or PAN does not fit the PIN block format") from None


def decrypt_pin_block(key: bytes, algorithm: Algorithm, block: bytes, pan: str) -> str:
    check_key(key, algorithm)
    try:
        if algorithm.is_aes:
            return str(psec.pinblock.decipher_pinblock_iso_4(key, block, pan))
        return str(psec.pinblock.decode_pinblock_iso_0(_tdes(key, block, encrypt=False), pan))
    except (ValueError, TypeError):
        raise PinBlockError("PIN block does not decode under this key") from None


def translate_pin_block(
    from_key: bytes,
    from_algorithm: Algorithm,
    to_key: bytes,
    to_algorithm: Algorithm,
    block: bytes,
    pan: str,
) -> bytes:
    """Re-encrypt a PIN block from one key to another (TPK -> ZPK)."""
    pin = decrypt_pin_block(from_key, from_algorithm, block, pan)
    return encrypt_pin_block(to_key, to_algorithm, pin, pan)
