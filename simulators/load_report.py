"""What a load run measured: counts, action codes and the latency histogram.

Mergeable, so the results of several worker processes add up to one report,
and serialisable (histogram included) for the trip back from a worker.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from .stats import LatencyHistogram

__all__ = ["LoadResult"]


@attrs.define
class LoadResult:
    """Counts and latencies of a run (or of several merged)."""

    duration_s: float = 0.0
    sent: int = 0
    answered: int = 0
    timeouts: int = 0
    errors: int = 0
    unmatched: int = 0
    by_action_code: dict[str, int] = attrs.field(factory=dict)
    latency: LatencyHistogram = attrs.field(factory=LatencyHistogram)
    connections_failed: int = 0
    reconnects: int = 0
    interrupted: bool = False  # stopped by a signal before the end of the run

    @property
    def throughput(self) -> float:
        """Answers per second over the run."""
        return self.answered / self.duration_s if self.duration_s > 0 else 0.0

    def merge(self, other: LoadResult) -> None:
        self.duration_s = max(self.duration_s, other.duration_s)
        self.sent += other.sent
        self.answered += other.answered
        self.timeouts += other.timeouts
        self.errors += other.errors
        self.unmatched += other.unmatched
        self.connections_failed += other.connections_failed
        self.reconnects += other.reconnects
        self.interrupted = self.interrupted or other.interrupted
        for code, n in other.by_action_code.items():
            self.by_action_code[code] = self.by_action_code.get(code, 0) + n
        self.latency.merge(other.latency)

    def as_dict(self) -> dict[str, Any]:
        """The JSON report."""
        return {
            "duration_s": round(self.duration_s, 3),
            "sent": self.sent,
            "answered": self.answered,
            "throughput_per_s": round(self.throughput, 1),
            "latency_ms": self.latency.summary().as_dict(),
            "by_action_code": dict(sorted(self.by_action_code.items())),
            "timeouts": self.timeouts,
            "errors": self.errors,
            "unmatched": self.unmatched,
            "connections_failed": self.connections_failed,
            "reconnects": self.reconnects,
            "interrupted": self.interrupted,
        }

    def wire_form(self) -> dict[str, Any]:
        """What a worker process sends back to the parent (histogram included)."""
        data = self.as_dict()
        data["histogram"] = self.latency.to_dict()
        data["duration_s"] = self.duration_s
        return data

    @classmethod
    def from_wire(cls, data: Mapping[str, Any]) -> LoadResult:
        return cls(
            duration_s=float(data["duration_s"]),
            sent=int(data["sent"]),
            answered=int(data["answered"]),
            timeouts=int(data["timeouts"]),
            errors=int(data["errors"]),
            unmatched=int(data["unmatched"]),
            by_action_code={str(k): int(v) for k, v in data["by_action_code"].items()},
            latency=LatencyHistogram.from_dict(data["histogram"]),
            connections_failed=int(data["connections_failed"]),
            reconnects=int(data.get("reconnects", 0)),
            interrupted=bool(data.get("interrupted", False)),
        )
