"""Latency arithmetic: nearest-rank percentiles and the log-linear histogram."""

from __future__ import annotations

import math

import pytest
from forecourt.simulators.stats import LatencyHistogram, nearest_rank
from hypothesis import given, settings
from hypothesis import strategies as st


def test_nearest_rank_is_a_sample_at_rank_ceil() -> None:
    values = [float(v) for v in range(1, 101)]  # 1..100
    assert nearest_rank(values, 50) == 50
    assert nearest_rank(values, 90) == 90
    assert nearest_rank(values, 99) == 99
    assert nearest_rank(values, 99.9) == 100
    assert nearest_rank(values, 100) == 100
    assert nearest_rank([7.0], 1) == 7.0
    assert nearest_rank([1.0, 2.0, 3.0, 4.0], 25) == 1.0
    assert nearest_rank([1.0, 2.0, 3.0, 4.0], 26) == 2.0


def test_nearest_rank_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        nearest_rank([], 50)
    with pytest.raises(ValueError):
        nearest_rank([1.0], 0)
    with pytest.raises(ValueError):
        nearest_rank([1.0], 101)


def test_small_values_are_exact() -> None:
    hist = LatencyHistogram()
    for micros in range(1, 201):
        hist.record(micros / 1e6)
    assert hist.percentile_us(50) == 100
    assert hist.percentile_us(100) == 200
    summary = hist.summary()
    assert summary.count == 200
    assert summary.max_ms == 0.2
    assert summary.p99_ms == 0.198


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=5_000_000), min_size=1, max_size=300))
def test_histogram_percentiles_within_bucket_error(micros: list[int]) -> None:
    hist = LatencyHistogram()
    for m in micros:
        hist.record(m / 1e6)
    exact = sorted(micros)
    for p in (50.0, 90.0, 99.0, 99.9, 100.0):
        truth = nearest_rank(exact, p)
        got = hist.percentile_us(p)
        assert truth <= got <= max(truth, math.floor(truth * (1 + 1 / 128)) + 1)
    assert hist.max_us == exact[-1]
    assert hist.min_us == exact[0]


def test_merge_equals_recording_everything_and_survives_json() -> None:
    a, b, whole = LatencyHistogram(), LatencyHistogram(), LatencyHistogram()
    for i in range(1000):
        value = (i * 37 % 1000) / 1000.0
        (a if i % 3 else b).record(value)
        whole.record(value)
    merged = LatencyHistogram.from_dict(a.to_dict())
    merged.merge(LatencyHistogram.from_dict(b.to_dict()))
    assert merged.summary() == whole.summary()
    assert merged.count == 1000


def test_empty_histogram_summary_is_zero() -> None:
    summary = LatencyHistogram().summary()
    assert summary.count == 0 and summary.p99_ms == 0.0 and summary.mean_ms == 0.0
