"""PINs in the simulators: the card a PIN block is bound to, and the host's check.

The terminal enciphers a script's PIN under its TPK for the card of the request
(`card_pan`). A real issuer verifies the PIN; the acquirer simulator stands in
with a configured PIN per card (a rule's `pin`): the block is opened under the
ZPK the switch shares with this host and compared in constant time, and the
digits are zeroed at once.
"""

from __future__ import annotations

import hmac

from forecourt.codecs.message import Message
from forecourt.keys.pin import PinBlockError, PinKey, open_block

__all__ = ["HostPins", "card_pan"]


class HostPins:
    """Whether a request's PIN block holds the expected PIN under the host's ZPK."""

    def __init__(self, zpk: PinKey | None) -> None:
        self._zpk = zpk

    def holds(self, request: Message, expected: str) -> bool:
        """False for a wrong PIN, no field 52, no ZPK, or a block that does not open."""
        block_hex = request.fields.get("52")
        pan = card_pan(request)
        if self._zpk is None or block_hex is None or pan is None:
            return False
        try:
            digits = open_block(self._zpk, bytes.fromhex(block_hex), pan)
        except (PinBlockError, ValueError):
            return False
        try:
            wanted = bytes(ord(c) - 0x30 for c in expected)
            return hmac.compare_digest(bytes(digits), wanted)
        finally:
            digits[:] = bytes(len(digits))


def card_pan(request: Message) -> str | None:
    """Field 2, or the PAN at the head of track 2 (35)."""
    pan = request.fields.get("2")
    if pan:
        return pan
    track = request.fields.get("35") or ""
    for separator in ("=", "D", "d"):
        if separator in track:
            return track.split(separator, 1)[0]
    return None
