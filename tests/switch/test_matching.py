"""Matching state: the terminal side (in flight, finished window), the link STANs."""

from __future__ import annotations

import gc

import pytest
from forecourt.switch.matching import (
    FinishedRequest,
    StanAllocator,
    StanExhausted,
    TerminalRequests,
)
from hypothesis import given, settings
from hypothesis import strategies as st


def key(n: int) -> tuple[str, str, str]:
    return ("1200", f"T{n % 7:07d}", f"{n:06d}")


async def test_finish_releases_waiters_and_keeps_the_sent_answer() -> None:
    requests = TerminalRequests(window=10)
    entry = requests.begin(key(1), "txn-1", "000000001000")
    assert requests.in_flight(key(1)) is entry
    assert requests.in_flight_count == 1
    assert requests.finished(key(1)) is None
    requests.finish(key(1), None, journalled=False)  # nothing to replay: not kept
    assert entry.done.is_set()
    assert requests.finished(key(1)) is None

    requests.begin(key(2), "txn-2", None)
    requests.finish(key(2), answer=object(), journalled=True)  # type: ignore[arg-type]
    assert requests.in_flight(key(2)) is None
    assert requests.finished(key(2)) == FinishedRequest("txn-2", None)

    requests.begin(key(3), "txn/3", "000000000250")  # a separator in the id is kept whole
    requests.finish(key(3), answer=object(), journalled=True)  # type: ignore[arg-type]
    assert requests.finished(key(3)) == FinishedRequest("txn/3", "000000000250")


@settings(max_examples=60, deadline=None)
@given(
    window=st.integers(min_value=1, max_value=8),
    keys=st.lists(st.integers(min_value=0, max_value=20), max_size=60),
)
def test_the_window_keeps_the_latest_answers_up_to_its_size(window: int, keys: list[int]) -> None:
    requests = TerminalRequests(window=window)
    model: dict[int, FinishedRequest] = {}
    for i, n in enumerate(keys):
        finished = FinishedRequest(f"txn-{i}", f"{i:012d}" if i % 3 else None)
        requests.remember(key(n), finished)
        model.pop(n, None)
        model[n] = finished  # most recent last
        while len(model) > window:
            del model[next(iter(model))]
    for n in range(21):
        assert requests.finished(key(n)) == model.get(n)


def test_the_window_is_out_of_the_collectors_view() -> None:
    """200,000 kept answers must not be walked by every full collection (gc_quiet)."""
    requests = TerminalRequests(window=1000)
    for n in range(1000):
        requests.remember(key(n), FinishedRequest(f"txn-{n}", f"{n:012d}"))
    gc.collect()
    tracked = sum(1 for obj in gc.get_referents(requests._finished) if gc.is_tracked(obj))
    assert tracked == 0


def test_a_quarantined_stan_is_not_reallocated_before_its_quarantine_ends() -> None:
    now = [1000.0]
    stans = StanAllocator(quarantine_s=60.0, clock=lambda: now[0], space=5)
    timed_out = stans.allocate()
    stans.release(timed_out, quarantine=True)
    assert stans.quarantined(timed_out)
    seen = []
    for _ in range(12):  # around the five STANs more than twice
        stan = stans.allocate()
        seen.append(stan)
        stans.release(stan)
    assert timed_out not in seen and len(set(seen)) == 4
    now[0] += 59.9
    assert stans.quarantined(timed_out)
    assert timed_out not in {stans.allocate() for _ in range(4)}  # the other four, all in use
    with pytest.raises(StanExhausted):
        stans.allocate()
    now[0] += 0.2  # the quarantine is over
    assert not stans.quarantined(timed_out)
    assert stans.allocate() == timed_out


def test_only_a_timed_out_stan_is_quarantined() -> None:
    stans = StanAllocator(quarantine_s=60.0)
    answered = stans.allocate()
    stans.release(answered)
    assert not stans.quarantined(answered)
    assert not stans.quarantined(stans.allocate())  # in use, not timed out
    assert not stans.quarantined(None)
    assert not stans.quarantined("12345X")
