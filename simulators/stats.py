"""Latency statistics for the load generator: nearest-rank percentiles and a
mergeable log-linear histogram.

A load run records hundreds of thousands of latencies, possibly in several
processes; keeping every sample would cost memory and a sort, so the histogram
keeps counts in buckets whose width grows with the value (the HdrHistogram idea):
values below 2**SUB_BITS microseconds are exact, larger ones land in a bucket no
wider than 1/2**(SUB_BITS-1) of the value. Histograms merge by adding counts,
which is how per-process results become one report.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

import attrs

__all__ = [
    "PERCENTILES",
    "LatencyHistogram",
    "LatencySummary",
    "nearest_rank",
]

SUB_BITS = 8  # relative error of a bucket at most 1/128 (< 0.8 %)
_HALF = 1 << (SUB_BITS - 1)
PERCENTILES: tuple[float, ...] = (50.0, 90.0, 99.0, 99.9)


def nearest_rank(sorted_values: Sequence[float], percentile: float) -> float:
    """The nearest-rank percentile of already sorted values.

    The value at 1-based rank ceil(p/100 * n): always one of the samples, never an
    interpolation, so "p99 = 12 ms" means one request in a hundred really took 12 ms
    or more.
    """
    if not sorted_values:
        raise ValueError("no values")
    if not 0.0 < percentile <= 100.0:
        raise ValueError("percentile must be in (0, 100]")
    rank = math.ceil(percentile / 100.0 * len(sorted_values))
    return sorted_values[max(rank, 1) - 1]


def _bucket(micros: int) -> int:
    if micros < 2 * _HALF:
        return micros
    shift = micros.bit_length() - SUB_BITS
    return shift * _HALF + (micros >> shift)


def _bucket_high(index: int) -> int:
    """The largest microsecond value that falls into bucket `index`."""
    if index < 2 * _HALF:
        return index
    shift = index // _HALF - 1
    mantissa = index - shift * _HALF
    return ((mantissa + 1) << shift) - 1


@attrs.frozen
class LatencySummary:
    """What a report says about latency, in milliseconds."""

    count: int
    mean_ms: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    p999_ms: float
    max_ms: float

    def as_dict(self) -> dict[str, float | int]:
        return attrs.asdict(self)


class LatencyHistogram:
    """Counts of latencies (microsecond resolution) in log-linear buckets."""

    __slots__ = ("_counts", "count", "max_us", "min_us", "total_us")

    def __init__(self) -> None:
        self._counts: dict[int, int] = {}
        self.count = 0
        self.total_us = 0
        self.max_us = 0
        self.min_us = 0

    def record(self, seconds: float) -> None:
        """Add one latency, in seconds (negative values count as zero)."""
        micros = int(seconds * 1_000_000.0 + 0.5) if seconds > 0 else 0
        index = _bucket(micros)
        counts = self._counts
        counts[index] = counts.get(index, 0) + 1
        if self.count == 0 or micros < self.min_us:
            self.min_us = micros
        self.count += 1
        self.total_us += micros
        if micros > self.max_us:
            self.max_us = micros

    def record_many(self, values: Iterable[float]) -> None:
        for value in values:
            self.record(value)

    def merge(self, other: LatencyHistogram) -> None:
        """Add another histogram's counts into this one (results of several processes)."""
        for index, n in other._counts.items():
            self._counts[index] = self._counts.get(index, 0) + n
        if other.count:
            if self.count == 0 or other.min_us < self.min_us:
                self.min_us = other.min_us
            self.max_us = max(self.max_us, other.max_us)
        self.count += other.count
        self.total_us += other.total_us

    def percentile_us(self, percentile: float) -> int:
        """Nearest-rank percentile, as the upper edge of its bucket (capped at the max)."""
        if self.count == 0:
            return 0
        if not 0.0 < percentile <= 100.0:
            raise ValueError("percentile must be in (0, 100]")
        rank = max(1, math.ceil(percentile / 100.0 * self.count))
        seen = 0
        for index in sorted(self._counts):
            seen += self._counts[index]
            if seen >= rank:
                return min(_bucket_high(index), self.max_us)
        return self.max_us  # pragma: no cover - counts always add up to count

    def percentile_ms(self, percentile: float) -> float:
        return self.percentile_us(percentile) / 1000.0

    def summary(self) -> LatencySummary:
        mean = self.total_us / self.count / 1000.0 if self.count else 0.0
        p50, p90, p99, p999 = (self.percentile_ms(p) for p in PERCENTILES)
        return LatencySummary(
            count=self.count,
            mean_ms=round(mean, 3),
            p50_ms=p50,
            p90_ms=p90,
            p99_ms=p99,
            p999_ms=p999,
            max_ms=self.max_us / 1000.0,
        )

    def to_dict(self) -> dict[str, object]:
        """A JSON-able form, to carry a histogram from a worker process to the parent."""
        return {
            "counts": {str(k): v for k, v in self._counts.items()},
            "count": self.count,
            "total_us": self.total_us,
            "max_us": self.max_us,
            "min_us": self.min_us,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> LatencyHistogram:
        hist = cls()
        counts = data.get("counts", {})
        if not isinstance(counts, Mapping):
            raise ValueError("counts must be a mapping")
        hist._counts = {int(k): int(v) for k, v in counts.items()}
        hist.count = _int(data, "count")
        hist.total_us = _int(data, "total_us")
        hist.max_us = _int(data, "max_us")
        hist.min_us = _int(data, "min_us")
        if sum(hist._counts.values()) != hist.count:
            raise ValueError("bucket counts do not add up to count")
        return hist


def _int(data: Mapping[str, object], key: str) -> int:
    value = data.get(key, 0)
    if not isinstance(value, int):
        raise ValueError(f"{key} must be an integer")
    return value
