"""The simulated terminal's keys: its KEK, the TAK the switch delivered and the one before,
and the TPK its PIN pad enciphers PINs under.

A terminal MACs its requests under its current TAK and accepts answers under the
current or the previous one, as it must while a key change is in flight. Of
network management, a sign-on is MAC'd under the sign-on key derived from the KEK
(`forecourt.keys.sign_on`), a key change and a sign-off under the TAK, as the switch
demands (docs/keys.md); an echo travels without. Scripts can also MAC wrongly on
purpose (`corrupt`, `previous`, `none`) to certify the switch's refusals. A PIN
entered in a script becomes field 52: ISO 9564 format 0 under a TDES TPK (format 4
under AES).
"""

from __future__ import annotations

from collections.abc import Callable

from forecourt.codecs.family import Family
from forecourt.codecs.message import Message
from forecourt.codecs.network import NetworkFunction, network_function
from forecourt.keys.errors import KeysError
from forecourt.keys.exchange import ClearKey, install_key_change
from forecourt.keys.mac import PreparedMac
from forecourt.keys.model import KeyType
from forecourt.keys.pin import encrypt_pin_block
from forecourt.keys.sign_on import sign_on_mac

from .answer_checks import StepFailed

__all__ = ["TerminalKeys"]


class TerminalKeys:
    """The TAKs one terminal holds; new ones arrive in sign-on / key change answers."""

    def __init__(
        self, family: Family, kek: bytes | None, tak: PreparedMac | None, mac_requests: bool
    ) -> None:
        self._family = family
        self._kek = kek
        self._mac_requests = mac_requests
        self.tak = tak
        self.previous_tak: PreparedMac | None = None
        self.tpk: ClearKey | None = None
        self.key_changes = 0

    def pin_block(self, pin: str, pan: str | None) -> str:
        """Field 52 (hex) for `pin` entered with card `pan`, under the current TPK."""
        if self.tpk is None:
            raise StepFailed("no TPK to encipher a PIN under (sign on first)")
        if not pan:
            raise StepFailed("a PIN needs the card's PAN (field 2 or 35)")
        try:
            block = encrypt_pin_block(self.tpk.key, self.tpk.algorithm, pin, pan)
        except KeysError as exc:
            raise StepFailed(f"cannot make a PIN block: {exc}") from None
        return block.hex().upper()

    def outgoing(self, message: Message) -> Message:
        """The request as this terminal's keys want it sent (a DUKPT PIN pad adds its
        KSN: simulators/dukpt_keys.py); unchanged here."""
        return message

    def accepted(self) -> list[PreparedMac]:
        """The TAKs an answer's MAC may be under (none until a TAK is installed)."""
        if self.tak is None:
            return []
        return [k for k in (self.tak, self.previous_tak) if k is not None]

    def mac_for(self, message: Message, mode: str) -> Callable[[bytes], bytes] | None:
        """The MAC function for a request; mode: auto, none, corrupt, previous."""
        if mode == "none":
            return None
        if message.mti[1] == "8":
            function = network_function(message)
            if function is NetworkFunction.SIGN_ON:
                return self._sign_on_mac(message, mode)
            if function is NetworkFunction.ECHO or (
                function is None and message.fields.get("24") is None
            ):
                return None  # an echo travels without a MAC
            # key change, sign-off, and a terminal interface's own 1804 (a cashier's
            # sign-on, 880): under the TAK, like a request
        if mode == "previous":
            if self.previous_tak is None:
                raise StepFailed("no previous TAK to MAC with (rotate keys first)")
            return self.previous_tak.generate
        if mode == "corrupt":
            return _Corrupt(self.tak).generate
        if self.tak is None or not (self._mac_requests or message.mti[1] == "8"):
            return None  # a key change is proven even where requests go without MACs
        return self.tak.generate

    def _sign_on_mac(self, message: Message, mode: str) -> Callable[[bytes], bytes] | None:
        """The proof of a sign-on: a MAC under the key derived from the KEK."""
        if self._kek is None:
            return None
        key = sign_on_mac(self._kek, message.fields.get("41", "").rstrip())
        return _Corrupt(key).generate if mode == "corrupt" else key.generate

    def install(self, message: Message) -> None:
        """Install the TAK a network answer delivers in 96 (1993) or 48 (1987), if any."""
        kek = self._kek
        if kek is None:
            return
        # 1993: only 96 (its 48 is IFSF message control data, e.g. a cashier's 48-15)
        if self._family == Family.ISO1993:
            field96 = message.fields.get("96")
            payload: str | bytes | None = bytes.fromhex(field96) if field96 else None
        else:
            payload = message.fields.get("48")
        if not payload:
            return
        try:
            keys = install_key_change(kek, payload)
            tak = keys.mac_key().mac
        except KeysError as exc:
            raise StepFailed(f"delivered keys do not install: {exc}") from None
        self.previous_tak = self.tak
        self.tak = tak
        self.tpk = next((k for k in keys.keys if k.key_type is KeyType.TPK), self.tpk)
        self.key_changes += 1


class _Corrupt:
    """A MAC function that returns a wrong MAC (the right one with its bits flipped)."""

    def __init__(self, key: PreparedMac | None) -> None:
        self._key = key

    def generate(self, data: bytes) -> bytes:
        good = self._key.generate(data) if self._key is not None else bytes(8)
        return bytes(b ^ 0xFF for b in good)
