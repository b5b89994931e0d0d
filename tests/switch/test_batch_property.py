"""Hypothesis properties over batch uploads: whatever order the advices arrive in, however
often each is repeated and wherever trailers come between them, a trailer is answered
with exactly the distinct advices that arrived before it, in balance exactly when
those are the whole batch, and each advice is journalled and forwarded once.

The first property runs the journal's batch operations on a real SQLite journal (many
examples, fast); the second drives a running switch on real sockets (few examples,
each its own switch and journal: slow).
"""

from __future__ import annotations

import contextlib
import sqlite3
import tempfile
from pathlib import Path

import pytest
import trio
from forecourt.switch.batch_records import AddBatchAdvice, BatchResult, BatchTotals, CloseBatch
from forecourt.switch.journal import open_journal
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.switch.harness import started_switch
from tests.switch.test_batch_upload import advices_at_host, offline_advice, totals, trailer

# a batch: distinct advices' amounts; an arrival: an advice's index, or None for a trailer
batches = st.lists(st.integers(1, 99_999), min_size=1, max_size=6)


@st.composite
def uploads(draw: st.DrawFn) -> tuple[list[int], list[int | None]]:
    amounts = draw(batches)
    indexes = st.integers(0, len(amounts) - 1)
    arrivals = draw(st.lists(st.one_of(indexes, st.none()), max_size=14))
    return amounts, arrivals


def _expected(amounts: list[int], seen: set[int]) -> BatchTotals:
    return BatchTotals(len(seen), sum(amounts[i] for i in seen))


async def _journal_run(db: Path, amounts: list[int], arrivals: list[int | None]) -> None:
    claimed = BatchTotals(len(amounts), sum(amounts))
    seen: set[int] = set()
    async with open_journal(db) as journal:
        for at, arrival in enumerate([*arrivals, None]):
            if arrival is None:
                op = CloseBatch("T1", "0000000001", claimed.count, claimed.amount, float(at))
                (result,) = await journal.write(op)
                assert isinstance(result, BatchResult)
                assert result.switch == _expected(amounts, seen)
                assert result.in_balance == (len(seen) == len(amounts))
                continue
            stan = f"{arrival + 1:06d}"
            add = AddBatchAdvice("T1", "0000000001", stan, f"txn{arrival}", amounts[arrival], at)
            (added,) = await journal.write(add)
            assert added == (arrival not in seen)
            seen.add(arrival)


@settings(max_examples=60, deadline=None)
@given(uploads())
def test_a_trailer_counts_each_distinct_advice_once_whatever_the_order(
    upload: tuple[list[int], list[int | None]],
) -> None:
    with tempfile.TemporaryDirectory() as d:
        trio.run(_journal_run, Path(d) / "journal.db", *upload)


async def _switch_run(data_dir: Path, amounts: list[int], arrivals: list[int | None]) -> None:
    batch = "0000000005"
    seen: set[int] = set()
    async with started_switch(data_dir) as sut, sut.terminal() as t:
        advices = [offline_advice(t, batch, a) for a in amounts]
        # the terminal's own re-upload at the end: every advice once more, then a trailer
        for arrival in [*arrivals, *range(len(amounts)), None]:
            if arrival is None:
                answer = await t.exchange(trailer(t, batch, len(amounts), sum(amounts)))
                held = _expected(amounts, seen)
                assert totals(answer) == (batch, f"{held.count:06d}{held.amount:012d}")
                assert answer.fields["39"] == ("500" if len(seen) == len(amounts) else "501")
                continue
            answer = await t.exchange(advices[arrival])
            assert answer.fields["39"] == "000"
            seen.add(arrival)
        at_host = await advices_at_host(sut, len(amounts))
    assert sorted(int(m.fields["4"]) for m in at_host) == sorted(amounts)
    with contextlib.closing(sqlite3.connect(data_dir / "journal.db")) as conn:
        (rows,) = conn.execute("SELECT count(*) FROM transactions WHERE mti_class = '2'").fetchone()
        (queued,) = conn.execute("SELECT count(*) FROM saf").fetchone()
    assert rows == queued == len(amounts)


@pytest.mark.slow
@settings(max_examples=6, deadline=None)
@given(uploads())
def test_any_upload_order_forwards_each_advice_once_and_ends_in_balance(
    upload: tuple[list[int], list[int | None]],
) -> None:
    with tempfile.TemporaryDirectory() as d:
        trio.run(_switch_run, Path(d), *upload)
