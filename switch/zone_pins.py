"""Field 52 on its way upstream: the terminal's TPK exchanged for the acquirer's ZPK.

A PIN block is only ever forwarded under the zone PIN key the switch shares with
the party it goes to; the terminal's TPK never leaves the switch. A link with no
usable ZPK gets no PIN data at all (52 and 53 removed, said once per link); a
block that cannot be translated is refused, never forwarded as it came. The
translation is the security module's (`translate_pin`, payShield CA): the
switch holds the two keys as references only, and with a device backend the
clear PIN never exists outside the device.
"""

from __future__ import annotations

from typing import Protocol

import structlog
from forecourt.codecs.message import Message
from forecourt.keys.pin import PinBlockError
from forecourt.keys.security_module import (
    KeyRef,
    ModuleError,
    ModuleUnavailable,
    PinBlockFormat,
    SecurityModule,
)
from forecourt.switch.transaction import pan_of

log = structlog.get_logger("forecourt.zone_pins")

FIELD52_BYTES = 8  # b8 in ifsf and in ISO 8583:1987: format 0, a TDES ZPK
# the module's codes for a block that does not decode (payShield 20, 24): the terminal's
_UNDECODABLE = frozenset({"20", "24"})


class PinRefused(Exception):
    """The PIN block cannot go upstream; `reason` names why (never PIN data).
    `unavailable`: the security module could not be reached in time."""

    def __init__(self, reason: str, *, unavailable: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.unavailable = unavailable


class PinKeySource(Protocol):
    @property
    def module(self) -> SecurityModule: ...

    async def pin_ref(self, owner: str) -> KeyRef | None: ...


def block_format(key: KeyRef) -> PinBlockFormat:
    """ISO 9564 format 0 under a TDES key, format 4 under an AES key."""
    return PinBlockFormat.ISO4 if key.algorithm.is_aes else PinBlockFormat.ISO0


class ZonePins:
    """Translates field 52 for one switch process; key references come from `source`."""

    def __init__(self, source: PinKeySource) -> None:
        self._source = source
        self._told: set[str] = set()

    async def upstream(self, message: Message, terminal_id: str, link: str) -> Message:
        """`message` as `link` may receive it: field 52 under the link's ZPK, or
        no PIN data. Raises PinRefused for a block that cannot be translated."""
        block_hex = message.fields.get("52")
        if block_hex is None:
            return message
        zpk = await self._source.pin_ref(link)
        if zpk is None or zpk.algorithm.is_aes:  # an AES ZPK's format 4 block is 16 bytes
            self._tell_once(link, "no ZPK" if zpk is None else "ZPK does not fit field 52")
            return message.with_fields({52: None, 53: None})
        tpk = await self._source.pin_ref(terminal_id)
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
            translated = await self._source.module.translate_pin(
                tpk, zpk, block, pan, block_format(tpk), PinBlockFormat.ISO0
            )
        except ModuleUnavailable:
            raise PinRefused("security module unavailable", unavailable=True) from None
        except PinBlockError:
            raise PinRefused("PIN block does not decode under the terminal's TPK") from None
        except ModuleError as exc:
            if exc.code in _UNDECODABLE:
                raise PinRefused("PIN block does not decode under the terminal's TPK") from None
            reason = f"security module refused the translation (error {exc.code})"
            raise PinRefused(reason) from None
        return message.with_fields({52: translated.hex().upper()})

    def _tell_once(self, link: str, reason: str) -> None:
        if link not in self._told:
            self._told.add(link)
            log.warning("pin_data_dropped", route=link, reason=reason)
