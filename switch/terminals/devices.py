"""A terminal's device status report (48-18): card reader, printer, scanner, pump link.

Four digits, one per device in that order, each 0 ok, 1 degraded (paper low, a
reader needing cleaning), 2 fault, 9 not fitted. The last report per terminal is
the journal's; each node shows it as a gauge per terminal and device
(switch/terminals/metrics.py).
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["DEVICES", "STATES", "DeviceStatusError", "describe", "parse_status"]

DEVICES: tuple[str, ...] = ("card_reader", "printer", "scanner", "pump_link")
STATES: Mapping[str, str] = {"0": "ok", "1": "degraded", "2": "fault", "9": "not fitted"}


class DeviceStatusError(ValueError):
    """48-18 is not four digits of 0, 1, 2 or 9."""


def parse_status(value: str) -> dict[str, int]:
    """48-18 to {device: state digit}."""
    if len(value) != len(DEVICES) or any(c not in STATES for c in value):
        raise DeviceStatusError(
            f"device status must be {len(DEVICES)} digits, each one of {''.join(STATES)}"
        )
    return {device: int(c) for device, c in zip(DEVICES, value, strict=True)}


def describe(value: str) -> str:
    """48-18 as an operator reads it: 'card_reader ok, printer fault, ...'."""
    try:
        parse_status(value)
    except DeviceStatusError:
        return f"unreadable ({value!r})"
    return ", ".join(f"{d} {STATES[c]}" for d, c in zip(DEVICES, value, strict=True))
