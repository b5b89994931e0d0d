"""Network management messages (sign-on, echo, sign-off, key change) in both families.

1993 carries the function in field 24 of a 1804; 1987 carries the network management
information code in field 70 of an 0800.
"""

from __future__ import annotations

import enum
import time

from forecourt.codecs.family import Family
from forecourt.codecs.message import Message


class NetworkFunction(enum.Enum):
    SIGN_ON = "sign_on"
    SIGN_OFF = "sign_off"
    ECHO = "echo"
    KEY_CHANGE = "key_change"


_CODE_1993 = {
    NetworkFunction.SIGN_ON: "801",
    NetworkFunction.SIGN_OFF: "802",
    NetworkFunction.KEY_CHANGE: "811",
    NetworkFunction.ECHO: "831",
}
_CODE_1987 = {
    NetworkFunction.SIGN_ON: "001",
    NetworkFunction.SIGN_OFF: "002",
    NetworkFunction.KEY_CHANGE: "101",
    NetworkFunction.ECHO: "301",
}
_FROM_1993 = {v: k for k, v in _CODE_1993.items()}
_FROM_1987 = {v: k for k, v in _CODE_1987.items()}


def transmission_time(now: float | None = None) -> str:
    """Field 7, MMDDhhmmss in UTC."""
    return time.strftime("%m%d%H%M%S", time.gmtime(time.time() if now is None else now))


def local_time_1993(now: float | None = None) -> str:
    """Field 12 of the 1993 family, YYMMDDhhmmss."""
    return time.strftime("%y%m%d%H%M%S", time.gmtime(time.time() if now is None else now))


def network_request(
    family: Family,
    function: NetworkFunction,
    stan: str,
    terminal_id: str | None = None,
    now: float | None = None,
) -> Message:
    fields: dict[str, str] = {"7": transmission_time(now), "11": stan}
    if terminal_id is not None:
        fields["41"] = terminal_id
    if family == Family.ISO1993:
        fields["24"] = _CODE_1993[function]
        return Message(mti="1804", fields=fields)
    fields["70"] = _CODE_1987[function]
    return Message(mti="0800", fields=fields)


def function_code(message: Message) -> str | None:
    """The 1993 family's function code (field 24), which names what a file action,
    administrative or network management request asks for; None in the 1987 family."""
    return message.fields.get("24") if message.mti[0] == "1" else None


def network_function(message: Message) -> NetworkFunction | None:
    """What a network management message asks for; None when it is not one we know."""
    if message.mti[:2] in ("18", "08") or message.mti[1] == "8":
        if message.mti[0] == "1":
            code = message.fields.get("24")
            if code is None and message.mti in ("1820", "1821"):
                return NetworkFunction.ECHO
            return _FROM_1993.get(code or "")
        return _FROM_1987.get(message.fields.get("70") or "")
    return None
