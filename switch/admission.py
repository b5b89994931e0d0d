"""Who may hold a terminal connection, and refusals logged as counts, not floods.

A terminal that cannot connect is locked out as surely as one whose requests are
refused, so a listener rations its slots: `max_connections` in all,
`max_connections_per_address` per source address, and a connection keeps its
slot only while it sends frames the pipeline accepts (the deadlines of
`session.TerminalSession`). Refusals come in floods (5,149 warning lines in 27 s
when silent connections filled a listener), so each is counted in metrics and
they are logged as one line per reason per interval.
"""

from __future__ import annotations

import attrs
import structlog
import trio
from forecourt.switch.config import ListenerConfig
from forecourt.switch.metrics import SwitchMetrics
from prometheus_client import Counter

log = structlog.get_logger("forecourt.admission")

# How often a listener writes its refusal counts (the first refusal after a quiet
# interval is written at once).
LOG_INTERVAL_S = 10.0


@attrs.frozen
class SessionLimits:
    """What a session of a listener is allowed (from its `[[listeners]]` keys)."""

    idle_timeout_s: float = 300.0
    first_frame_timeout_s: float = 10.0
    max_in_flight: int = 32

    @classmethod
    def of(cls, config: ListenerConfig) -> SessionLimits:
        return cls(
            idle_timeout_s=config.idle_timeout_s,
            first_frame_timeout_s=config.first_frame_timeout_s,
            max_in_flight=config.max_in_flight_per_connection,
        )


class Admission:
    """Open connections of one listener, in all and per source address.

    The address is the peer's IP, not its port: one host opening many sockets is
    one party. Behind a proxy that does not pass the client's address, every
    terminal is the proxy's address (docs/deployment.md), hence `per_address=0`
    (no cap) by default.
    """

    def __init__(self, max_connections: int, per_address: int = 0) -> None:
        self.max_connections = max_connections
        self.per_address = per_address
        self.count = 0
        self._by_address: dict[str, int] = {}

    def admit(self, address: str) -> str | None:
        """Take a slot for `address`, or say why not (a metric reason)."""
        if self.count >= self.max_connections:
            return "max_connections"
        if self.per_address:
            held = self._by_address.get(address, 0)
            if held >= self.per_address:
                return "per_address"
            self._by_address[address] = held + 1
        self.count += 1
        return None

    def release(self, address: str) -> None:
        self.count -= 1
        if self.per_address:
            held = self._by_address.pop(address, 1) - 1
            if held > 0:
                self._by_address[address] = held

    def held_by(self, address: str) -> int:
        return self._by_address.get(address, 0)


class ConnectionLog:
    """A listener's refused and closed connections: each counted, logged as counts.

    `run` (owned by the listener's nursery) writes the first one after a quiet
    interval at once, then at most one line per event and reason every
    `interval_s`, with how many there were; what is pending when it stops is
    written then.
    """

    def __init__(
        self, listener: str, metrics: SwitchMetrics, interval_s: float = LOG_INTERVAL_S
    ) -> None:
        self.listener = listener
        self.interval_s = interval_s
        self._metrics = metrics
        self._counters: dict[tuple[str, str], Counter] = {}
        self._pending: dict[tuple[str, str], int] = {}
        self._wake = trio.Event()

    def refused(self, reason: str) -> None:
        """A connection refused at accept (`max_connections`, `per_address`)."""
        self._note("connections_refused", reason)

    def closed(self, reason: str) -> None:
        """A connection the switch closed (`first_frame_timeout`)."""
        self._note("connections_closed", reason)

    def _note(self, event: str, reason: str) -> None:
        key = (event, reason)
        counter = self._counters.get(key)
        if counter is None:  # bounded: the reasons are this module's and session.py's
            family = (
                self._metrics.connections_refused
                if event == "connections_refused"
                else self._metrics.connections_closed
            )
            counter = self._counters[key] = family.labels(listener=self.listener, reason=reason)
        counter.inc()
        self._pending[key] = self._pending.get(key, 0) + 1
        self._wake.set()

    async def run(self) -> None:
        try:
            while True:
                await self._wake.wait()
                self._wake = trio.Event()
                self.flush()
                await trio.sleep(self.interval_s)
        finally:
            self.flush()

    def flush(self) -> None:
        for (event, reason), count in self._pending.items():
            log.warning(
                event,
                listener=self.listener,
                reason=reason,
                count=count,
                interval_s=self.interval_s,
            )
        self._pending.clear()
