"""Terminal-side matching state: the in-flight map and the window of finished answers."""

from __future__ import annotations

import gc

from forecourt.switch.matching import FinishedRequest, TerminalRequests
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
