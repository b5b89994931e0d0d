"""The terminal simulator as a DUKPT PIN pad: `[terminal.dukpt]` in a script.

    [terminal.dukpt]
    scheme = "aes"                                     # or "tdes"
    initial_key = "1273671EA26AC29AFA4D1084127652A1"   # as injected (test only)
    initial_key_id = "1234567890123456"                # TDES: the initial KSN, 20 hex digits
    ksn_field = "48.29"                                # or "53", as the switch's group says
    counter_start = 0                                  # the counter before the first request

Every request draws the PIN pad's next KSN (simulators/dukpt_terminal.py), carries
it in the KSN field and is MAC'd under its request key; a PIN entered becomes
the DUKPT PIN block (AES: format 4 in 48-30; TDES: format 0 in field 52); the
answer's MAC is checked under the same KSN's response key. A resend (`stan =
"same"`) keeps the KSN it went with: a replay, as the switch sees it. Sign-on
and key change deliver no keys to a DUKPT terminal.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from forecourt.codecs.errors import CodecError
from forecourt.codecs.family import Family
from forecourt.codecs.field48 import decode_field48, encode_field48
from forecourt.codecs.message import Message
from forecourt.keys.errors import KeysError
from forecourt.keys.mac import MacAlgorithm, PreparedMac

from .answer_checks import StepFailed
from .dukpt_settings import DukptSettings
from .dukpt_terminal import DukptPinPad, Exhausted
from .terminal_keys import TerminalKeys

if TYPE_CHECKING:
    from .script import TerminalSettings

__all__ = ["DukptKeys", "terminal_keys_for"]


class _AnswerKey(PreparedMac):
    """The answer's MAC key under one KSN, as the answer checks take MAC keys."""

    def __init__(self, pad: DukptPinPad, ksn: bytes) -> None:
        self._pad = pad
        self._ksn = ksn
        self.algorithm = MacAlgorithm.CMAC if pad.scheme == "aes" else MacAlgorithm.RETAIL
        self.kcv = ""

    def generate(self, data: bytes) -> bytes:
        return self._pad.mac(self._ksn, data, answer=True)[:8]


class DukptKeys(TerminalKeys):
    """TerminalKeys of a DUKPT PIN pad: keys per KSN, none delivered by the switch."""

    def __init__(self, settings: DukptSettings, family: Family, mac_requests: bool) -> None:
        super().__init__(family, None, None, mac_requests)
        self.pad = DukptPinPad(
            settings.scheme,
            settings.initial_key,
            settings.initial_key_id,
            settings.ksn_field,
            settings.counter_start,
        )
        self._drawn: bytes | None = None  # the KSN of the request being built
        self._last: bytes | None = None  # the KSN of the request last sent

    def _ksn_in(self, message: Message) -> bytes | None:
        try:
            if self.pad.ksn_field == "53":
                value = message.fields.get("53")
                return bytes.fromhex(value) if value else None
            f48 = message.fields.get("48")
            found = decode_field48(f48).get(29) if f48 else None
        except (ValueError, CodecError):
            return None
        return found if isinstance(found, bytes) else None

    def _draw(self) -> bytes:
        if self._drawn is None:
            try:
                self._drawn = self.pad.next_ksn()
            except Exhausted as exc:
                raise StepFailed(str(exc)) from None
        return self._drawn

    def pin_block(self, pin: str, pan: str | None) -> str:
        if not pan:
            raise StepFailed("a PIN needs the card's PAN (field 2 or 35)")
        try:
            block = self.pad.pin_block(self._draw(), pin, pan)
        except KeysError as exc:
            raise StepFailed(f"cannot make a PIN block: {exc}") from None
        return block.hex().upper()  # field 52; `outgoing` moves an AES block to 48-30

    def outgoing(self, message: Message) -> Message:
        """The request with its KSN (a resend keeps the one it carries)."""
        ksn = self._ksn_in(message)
        if ksn is None:
            ksn = self._draw()
            block = message.fields.get("52")
            extra: dict[int, str | bytes] = {}
            updates: dict[int, str | None] = {}
            if block is not None and self.pad.scheme == "aes":
                extra[30] = bytes.fromhex(block)
                updates[52] = None
            message = _with_ksn(message, ksn, self.pad.ksn_field, extra, updates)
        self._drawn = None
        self._last = ksn
        return message

    def mac_for(self, message: Message, mode: str) -> Callable[[bytes], bytes] | None:
        if mode == "none" or self._last is None:
            return None
        ksn = self._last

        def mac(data: bytes) -> bytes:
            code = self.pad.mac(ksn, data)[:8]
            return bytes(b ^ 0xFF for b in code) if mode == "corrupt" else code

        return mac

    def accepted(self) -> list[PreparedMac]:
        if self._last is None:
            return []
        return [_AnswerKey(self.pad, self._last)]

    def install(self, message: Message) -> None:
        return None  # a DUKPT terminal is never handed keys


def _with_ksn(
    message: Message,
    ksn: bytes,
    ksn_field: str,
    extra: dict[int, str | bytes],
    updates: dict[int, str | None],
) -> Message:
    if ksn_field == "53":
        updates[53] = ksn.hex().upper()
    else:
        extra[29] = ksn
    if extra:
        f48 = message.fields.get("48")
        subs = dict(decode_field48(f48)) if f48 else {}
        subs.update(extra)
        updates[48] = encode_field48(subs)
    return message.with_fields(updates)


def terminal_keys_for(settings: TerminalSettings) -> TerminalKeys:
    """The keys the script's terminal holds: a DUKPT PIN pad's, or KEK and TAKs."""
    family = settings.identity.family
    if settings.dukpt is not None:
        return DukptKeys(settings.dukpt, family, settings.mac)
    return TerminalKeys(family, settings.kek, settings.tak, settings.mac)
