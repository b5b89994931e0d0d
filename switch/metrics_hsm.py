"""The security module in /metrics: a collector that reads the backend's `status()`
when Prometheus scrapes, so the command path pays nothing for it.

forecourt_security_module_up (1 while the module answers), _connections,
_in_flight, _commands_total and _errors_total{code} (the HSM's error codes, and
"unavailable" for connections lost and deadlines passed; docs/hsm.md).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

Status = Callable[[], dict[str, Any]]


class SecurityModuleCollector(Collector):
    def __init__(self, status: Status) -> None:
        self._status = status

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        s = self._status()
        labels = ["backend"]
        backend = [str(s.get("backend", ""))]
        for name, key, doc in (
            ("forecourt_security_module_up", "available", "1 while the security module answers"),
            ("forecourt_security_module_connections", "connected", "open connections"),
            ("forecourt_security_module_in_flight", "in_flight", "commands outstanding"),
        ):
            g = GaugeMetricFamily(name, doc, labels=labels)
            g.add_metric(backend, float(s.get(key, 0)))
            yield g
        c = CounterMetricFamily(
            "forecourt_security_module_commands", "commands answered", labels=labels
        )
        c.add_metric(backend, float(s.get("commands", 0)))
        yield c
        e = CounterMetricFamily(
            "forecourt_security_module_errors",
            "commands refused, by the module's error code",
            labels=[*labels, "code"],
        )
        for code, n in sorted(dict(s.get("errors", {})).items()):
            e.add_metric([*backend, str(code)], float(n))
        yield e


def register_security_module(registry: CollectorRegistry, status: Status) -> None:
    """Expose a backend's `status()` in `registry` (the switch's own, never the global)."""
    registry.register(SecurityModuleCollector(status))
