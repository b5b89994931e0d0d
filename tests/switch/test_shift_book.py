"""ShiftBook's parked reversals against a plain model: which SAF items a shift close,
a completion or the hold-window expiry hands back, including stamps out of order."""

from __future__ import annotations

from forecourt.switch.shifts import ShiftBook
from hypothesis import given, settings
from hypothesis import strategies as st

TERMINALS = ["T1", "T2", "T3"]
TXNS = [f"txn{i}" for i in range(12)]

_park = st.tuples(
    st.just("park"),
    st.sampled_from(TERMINALS),
    st.sampled_from(TXNS),
    st.integers(0, 10_000),
    st.integers(0, 100),
    st.booleans(),
)
_complete = st.tuples(st.just("complete"), st.sampled_from(TXNS))
_close = st.tuples(st.just("close"), st.sampled_from(TERMINALS))
_expire = st.tuples(st.just("expire"), st.integers(0, 110))


class Model:
    """The obvious implementation: scan everything every time."""

    def __init__(self) -> None:
        self.parked: dict[str, tuple[int, str, float | None]] = {}

    def park(self, terminal: str, txn: str, saf_id: int, at: float, expires: bool) -> None:
        self.parked[txn] = (saf_id, terminal, at if expires else None)

    def complete(self, txn: str) -> int | None:
        entry = self.parked.pop(txn, None)
        return None if entry is None else entry[0]

    def close(self, terminal: str) -> list[int]:
        gone = [t for t, e in self.parked.items() if e[1] == terminal]
        return [self.parked.pop(t)[0] for t in gone]

    def expire(self, before: float) -> int:
        old = [t for t, e in self.parked.items() if e[2] is not None and e[2] < before]
        for t in old:
            del self.parked[t]
        return len(old)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(_park, _complete, _close, _expire), max_size=60))
def test_parked_reversals_match_the_model(steps: list[tuple[object, ...]]) -> None:
    book, model = ShiftBook(), Model()
    for step in steps:
        match step:
            case ("park", terminal, txn, saf_id, at, expires):
                book.parked(terminal, txn, saf_id, held_since=float(at), expires=expires)
                model.park(terminal, txn, saf_id, float(at), expires)
            case ("complete", txn):
                assert book.completed(txn) == model.complete(txn)
            case ("close", terminal):
                assert sorted(book.closed(terminal)) == sorted(model.close(terminal))
            case ("expire", before):
                assert book.expire(float(before)) == model.expire(float(before))
        for txn in TXNS:
            entry = model.parked.get(txn)
            assert book.parked_id(txn) == (None if entry is None else entry[0])
        assert book.parked_count() == len(model.parked)


def test_expiry_reads_only_the_held_end() -> None:
    """In-order stamps: expiry stops at the first entry still held (the sweep runs on
    the event loop with a whole hold window parked)."""
    book = ShiftBook()
    for i in range(1000):
        book.parked(f"T{i % 50}", f"txn{i}", i, held_since=float(i))
    assert book.expire(10.0) == 10
    assert book.parked_id("txn9") is None
    assert book.parked_id("txn10") == 10
    # a clock step back: still exact
    book.parked("T1", "late", 5000, held_since=3.0)
    assert book.expire(11.0) == 2
    assert book.parked_id("late") is None
    assert book.parked_count() == 989


def test_completion_after_close_finds_nothing() -> None:
    book = ShiftBook()
    book.parked("T1", "a", 1, held_since=1.0)
    book.parked("T1", "b", 2, held_since=2.0, expires=False)
    book.parked("T2", "c", 3, held_since=3.0)
    assert sorted(book.closed("T1")) == [1, 2]
    assert book.completed("a") is None
    assert book.expire(100.0) == 1
    assert book.parked_count() == 0
