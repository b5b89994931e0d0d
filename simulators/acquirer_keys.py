"""The acquirer simulator's MAC keys: the zone key, or terminal keys it delivers itself.

Towards a switch the host verifies and generates MACs under one ZAK. Standing
in for a switch towards terminals (a KEK configured) it generates a TAK at
every sign-on / key change, delivers it under the KEK in field 96 (1993) or 48
(1987), and from then on uses that terminal's TAK. As the switch does, it wants
a sign-on MAC'd under the sign-on key derived from the KEK and a key change under
the terminal's TAK (docs/keys.md); echo and sign-off carry no MAC.
"""

from __future__ import annotations

from forecourt.codecs.dialect import mac_input
from forecourt.codecs.family import Family
from forecourt.codecs.message import Message
from forecourt.codecs.network import NetworkFunction, network_function
from forecourt.keys.crypto import Algorithm, generate_key
from forecourt.keys.exchange import build_payload
from forecourt.keys.mac import MacAlgorithm, PreparedMac, prepare_mac
from forecourt.keys.model import KeyType
from forecourt.keys.sign_on import sign_on_mac

__all__ = ["HostKeys"]


class HostKeys:
    """Which key MACs a message, whether its MAC holds, and key delivery at sign-on."""

    def __init__(
        self, family: Family, zak: PreparedMac | None, kek: bytes | None, verify: bool
    ) -> None:
        self._family = family
        self._zak = zak
        self._kek = kek
        self.verify = verify
        self._taks: dict[str, PreparedMac] = {}
        self._tak_versions: dict[str, int] = {}

    @property
    def stands_in_for_switch(self) -> bool:
        return self._kek is not None

    def mac_key(self, request: Message) -> tuple[PreparedMac | None, bool]:
        """(the key for this message, whether it is a delivered terminal key)."""
        terminal_id = request.fields.get("41")
        if terminal_id is not None and self._taks:
            tak = self._taks.get(terminal_id)
            if tak is not None:
                return tak, True
        return self._zak, False

    def check(self, request: Message, payload: bytes) -> str | None:
        """ "ok", "bad", "absent", or None when the message needs no MAC."""
        key, delivered = self.mac_key(request)
        if self._kek is not None and request.mti[1] == "8":
            return self._proof(request, payload, key if delivered else None)
        if key is None or (delivered and request.mti[1] == "8"):
            return None
        mac_hex = request.fields.get("128") or request.fields.get("64")
        if mac_hex is None:
            return "absent"
        try:
            mac = bytes.fromhex(mac_hex)
        except ValueError:
            return "bad"
        return "ok" if key.verify(mac_input(payload), mac) else "bad"

    def _proof(self, request: Message, payload: bytes, tak: PreparedMac | None) -> str | None:
        """A sign-on under the KEK's sign-on key, a key change under the TAK: else "bad"."""
        function = network_function(request)
        terminal_id = (request.fields.get("41") or "").rstrip()
        if function is NetworkFunction.SIGN_ON and self._kek is not None:
            key: PreparedMac | None = sign_on_mac(self._kek, terminal_id)
        elif function is NetworkFunction.KEY_CHANGE:
            key = tak
        else:
            return None  # echo, sign-off
        mac_hex = request.fields.get("128") or request.fields.get("64")
        try:
            mac = bytes.fromhex(mac_hex or "")
        except ValueError:
            return "bad"
        ok = key is not None and key.verify(mac_input(payload), mac)
        return "ok" if ok else "bad"

    def refuses(self, mac_state: str | None) -> bool:
        """A wrong MAC, or a missing one when MACs are verified: answer 916 / A0."""
        return mac_state == "bad" or (mac_state == "absent" and self.verify)

    def deliver(self, request: Message, out: dict[str, str]) -> None:
        """Sign-on / key change from a terminal: a new TAK under its KEK in 96 / 48."""
        kek = self._kek
        terminal_id = request.fields.get("41")
        if kek is None or terminal_id is None:
            return
        if network_function(request) not in (NetworkFunction.SIGN_ON, NetworkFunction.KEY_CHANGE):
            return
        kek_algorithm = Algorithm.TDES2 if len(kek) == 16 else Algorithm.AES256
        tak_algorithm = Algorithm.TDES2 if len(kek) == 16 else Algorithm.AES128
        tak = generate_key(tak_algorithm)
        self._tak_versions[terminal_id] = version = self._tak_versions.get(terminal_id, 0) + 1
        payload = build_payload(kek, kek_algorithm, [(KeyType.TAK, version, tak_algorithm, tak)])
        if self._family == Family.ISO1993:
            out["96"] = payload.encode("ascii").hex().upper()
        else:
            out["48"] = payload
        self._taks[terminal_id] = prepare_mac(tak, MacAlgorithm.for_key(tak_algorithm))
