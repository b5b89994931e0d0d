"""The terminals' metrics: their devices' state, and the outcome of registrations.

`forecourt_terminal_device_state{terminal_id, device}`: the digit the terminal last
reported (0 ok, 1 degraded, 2 fault, 9 not fitted), one series per terminal and
device, set from the journal at start and from each report this node takes.
`forecourt_terminal_registrations_total{result}`: registered, or why refused.
"""

from __future__ import annotations

import weakref

from prometheus_client import CollectorRegistry, Counter, Gauge

from .devices import parse_status

__all__ = ["TerminalMetrics"]

_BY_REGISTRY: weakref.WeakKeyDictionary[CollectorRegistry, tuple[Gauge, Counter]] = (
    weakref.WeakKeyDictionary()
)


class TerminalMetrics:
    """On the switch's registry; a second pipeline on the same registry shares them."""

    def __init__(self, registry: CollectorRegistry) -> None:
        made = _BY_REGISTRY.get(registry)
        if made is None:
            made = _BY_REGISTRY[registry] = (
                Gauge(
                    "forecourt_terminal_device_state",
                    "A terminal's devices as it last reported them: 0 ok, 1 degraded,"
                    " 2 fault, 9 not fitted",
                    ["terminal_id", "device"],
                    registry=registry,
                ),
                Counter(
                    "forecourt_terminal_registrations",
                    "Online registrations of terminals: registered, or why refused",
                    ["result"],
                    registry=registry,
                ),
            )
        self._devices, self._registrations = made

    def show_devices(self, terminal_id: str, status: str) -> None:
        for device, state in parse_status(status).items():
            self._devices.labels(terminal_id=terminal_id, device=device).set(state)

    def registration(self, result: str) -> None:
        self._registrations.labels(result=result).inc()
