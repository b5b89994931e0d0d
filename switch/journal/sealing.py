"""Sealing SAF payloads: the queued reversal/advice carries the PAN, the journal must not.

A SAF message must be resent verbatim (with field 2) after a restart, so it
cannot simply be stripped. It is sealed with AES-GCM under a data key the
caller passes in (derived from the LMK by the key store; never stored here).
Layout: version byte 0x01, 12-byte random nonce, ciphertext+tag. The associated
data binds it to its transaction, link and MTI, so a sealed payload cannot be
moved to another item unnoticed.
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from forecourt.switch.journal.model import JournalError

_VERSION = b"\x01"


class SafSealer:
    """AES-GCM seal/open for SAF payloads under one data key (16, 24 or 32 bytes)."""

    __slots__ = ("_aead",)

    def __init__(self, data_key: bytes) -> None:
        if len(data_key) not in (16, 24, 32):
            raise JournalError("SAF data key must be 16, 24 or 32 bytes (AES)")
        self._aead = AESGCM(data_key)

    @staticmethod
    def _aad(txn_id: str, link: str, mti: str) -> bytes:
        return f"forecourt-saf|{txn_id}|{link}|{mti}".encode()

    def seal(self, payload: bytes, txn_id: str, link: str, mti: str) -> bytes:
        nonce = os.urandom(12)
        return _VERSION + nonce + self._aead.encrypt(nonce, payload, self._aad(txn_id, link, mti))

    def open(self, sealed: bytes, txn_id: str, link: str, mti: str) -> bytes:
        if sealed[:1] != _VERSION or len(sealed) < 29:
            raise JournalError("SAF payload: unknown sealing format")
        try:
            return self._aead.decrypt(sealed[1:13], sealed[13:], self._aad(txn_id, link, mti))
        except InvalidTag:
            raise JournalError("SAF payload: wrong data key or tampered item") from None
