"""Login rate-limiting: too many failures for a name or from an address in a
window lock further attempts out until the window has passed (PCI DSS 8.3.4)."""

from __future__ import annotations

import collections

import attrs


@attrs.define
class LoginThrottle:
    """Failures per key (``name:...``, ``addr:...``) within ``window_s``. In memory:
    a restart of the console clears it, as it clears the sessions."""

    max_failures: int = 5
    window_s: float = 300.0
    _failures: dict[str, collections.deque[float]] = attrs.field(factory=dict)

    def _recent(self, key: str, now: float) -> collections.deque[float]:
        times = self._failures.setdefault(key, collections.deque())
        while times and times[0] <= now - self.window_s:
            times.popleft()
        if not times:
            del self._failures[key]
            return collections.deque()
        return times

    def retry_after(self, keys: tuple[str, ...], now: float) -> float | None:
        """Seconds until a try is allowed again, or None when it is allowed now."""
        waits = [
            times[0] + self.window_s - now
            for times in (self._recent(k, now) for k in keys)
            if len(times) >= self.max_failures
        ]
        return max(waits) if waits else None

    def failed(self, keys: tuple[str, ...], now: float) -> None:
        for key in keys:
            self._failures.setdefault(key, collections.deque()).append(now)

    def succeeded(self, key: str) -> None:
        self._failures.pop(key, None)
