"""Warnings a terminal can repeat at will (an unknown terminal, a bad MAC, a malformed
frame), written at most once per interval each, with how many there were.

The first of a kind after a quiet interval is written at once with its fields;
the next ones in the interval are only counted, and `run` (owned by the switch's
nursery) writes one line per kind with the count and the last one's fields. A
flood of 20,000 refusals in 10 s is a handful of lines; the metrics still count
every one.
"""

from __future__ import annotations

import time
from typing import Any

import trio

INTERVAL_S = 10.0


class RepeatedWarnings:
    def __init__(self, logger: Any, interval_s: float = INTERVAL_S) -> None:
        self._log = logger
        self.interval_s = interval_s
        self._quiet_until: dict[str, float] = {}
        self._held: dict[str, tuple[int, dict[str, Any]]] = {}

    def warn(self, event: str, **fields: Any) -> None:
        now = time.monotonic()
        if now >= self._quiet_until.get(event, 0.0):
            self._quiet_until[event] = now + self.interval_s
            self._log.warning(event, **fields)
            return
        count, _ = self._held.get(event, (0, fields))
        self._held[event] = (count + 1, fields)

    def flush(self) -> None:
        """One line per kind held back: how many, and the last one's fields."""
        held, self._held = self._held, {}
        for event, (count, fields) in held.items():
            self._log.warning(event, **fields, repeated=count, within_s=self.interval_s)

    async def run(self) -> None:
        try:
            while True:
                await trio.sleep(self.interval_s)
                self.flush()
        finally:
            self.flush()
