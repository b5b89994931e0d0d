"""The terminal-side requests of tests/terminals: cashier sign-on and off (1804/880,
881), registration (1804/882) and the device status advice (1624/670)."""

from __future__ import annotations

import time

from forecourt.codecs.field48 import encode_field48
from forecourt.codecs.message import Message

from tests.switch.harness import Terminal


def _fields(terminal: Terminal, code: str, elements: dict[int, str | bytes]) -> dict[str, str]:
    fields = {
        "7": time.strftime("%m%d%H%M%S", time.gmtime()),
        "11": terminal.next_stan(),
        "24": code,
        "41": terminal.terminal_id,
    }
    if elements:
        fields["48"] = encode_field48(elements)
    return fields


def cashier_sign_on(terminal: Terminal, operator_id: str) -> Message:
    return Message(mti="1804", fields=_fields(terminal, "880", {15: operator_id}))


def cashier_sign_off(terminal: Terminal) -> Message:
    return Message(mti="1804", fields=_fields(terminal, "881", {}))


def registration(terminal: Terminal, serial: str, code: str) -> Message:
    return Message(mti="1804", fields=_fields(terminal, "882", {16: serial, 17: code}))


def device_status(terminal: Terminal, status: str) -> Message:
    return Message(mti="1624", fields=_fields(terminal, "670", {18: status}))
