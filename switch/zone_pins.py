"""Field 52 on its way upstream: the terminal's TPK exchanged for the acquirer's ZPK.

A PIN block is only ever forwarded under the zone PIN key the switch shares with
the party it goes to; the terminal's TPK never leaves the switch. A link with no
usable ZPK gets no PIN data at all (52 and 53 removed, said once per link); a
block that cannot be translated is refused, never forwarded as it came. The
clear PIN lives inside one `PinTranslator.translate` call.
"""

from __future__ import annotations

from typing import Protocol

import structlog
from forecourt.codecs.message import Message
from forecourt.keys.pin import PinBlockError, PinKey, PinTranslator, SoftwarePinTranslator
from forecourt.switch.transaction import pan_of

log = structlog.get_logger("forecourt.zone_pins")

FIELD52_BYTES = 8  # b8 in ifsf and in ISO 8583:1987: format 0, a TDES ZPK


class PinRefused(Exception):
    """The PIN block cannot go upstream; `reason` names why (never PIN data)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class PinKeySource(Protocol):
    async def pin_key(self, owner: str) -> PinKey | None: ...


class ZonePins:
    """Translates field 52 for one switch process; cached keys come from `source`."""

    def __init__(self, source: PinKeySource, translator: PinTranslator | None = None) -> None:
        self._source = source
        self._translator = translator or SoftwarePinTranslator()
        self._told: set[str] = set()

    async def upstream(self, message: Message, terminal_id: str, link: str) -> Message:
        """`message` as `link` may receive it: field 52 under the link's ZPK, or
        no PIN data. Raises PinRefused for a block that cannot be translated."""
        block_hex = message.fields.get("52")
        if block_hex is None:
            return message
        zpk = await self._source.pin_key(link)
        if zpk is None or zpk.block_length != FIELD52_BYTES:
            self._tell_once(link, "no ZPK" if zpk is None else "ZPK does not fit field 52")
            return message.with_fields({52: None, 53: None})
        tpk = await self._source.pin_key(terminal_id)
        if tpk is None:
            raise PinRefused("terminal has no TPK")
        pan = pan_of(message)
        if not pan:
            raise PinRefused("no PAN to bind the PIN block to")
        try:
            block = bytes.fromhex(block_hex)
        except ValueError:
            raise PinRefused("field 52 is not binary") from None
        try:
            translated = self._translator.translate(block, pan, tpk, zpk)
        except PinBlockError:
            raise PinRefused("PIN block does not decode under the terminal's TPK") from None
        return message.with_fields({52: translated.hex().upper()})

    def _tell_once(self, link: str, reason: str) -> None:
        if link not in self._told:
            self._told.add(link)
            log.warning("pin_data_dropped", route=link, reason=reason)
