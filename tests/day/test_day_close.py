"""Closing a business day on SQLite: its bounds, the open shifts closed or rolled, the
frozen totals per tender / acquirer / terminal / operator, and a late advice."""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path

import attrs
import pytest
import trio
from forecourt.switch.business_day import Cutover, day_bounds
from forecourt.switch.config_business_day import BusinessDayConfig
from forecourt.switch.day.closer import BusinessDay, day_lines_now
from forecourt.switch.day.store import frozen_lines
from forecourt.switch.journal import Journal, open_journal
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.day.rows import insert, model, sale, without_late

CUTOVER = Cutover(2, 0, 60)  # 02:00 at UTC+01:00
DAY = dt.date(2026, 11, 30)
START, END = day_bounds(DAY, CUTOVER)


def closer(journal: Journal, open_shifts: str = "roll", at: float = END + 5) -> BusinessDay:
    config = BusinessDayConfig(CUTOVER, open_shifts=open_shifts)
    return BusinessDay(config, journal, {}, "n1", clock=lambda: at, acquirers=())


async def frozen(journal: Journal, late: bool = False) -> list:
    return frozen_lines(_sync(await journal.rows(_LINES, (DAY.isoformat(), late))), "")


_LINES = (
    "SELECT dimension, key, currency, category, count, amount, late FROM business_day_totals "
    "WHERE day = ? AND late = ? ORDER BY dimension, key, currency, category"
)


def _sync(rows):  # type: ignore[no-untyped-def]
    return lambda _sql, _params: rows


@pytest.mark.parametrize("open_shifts", ["close", "roll"])
async def test_the_day_runs_from_cutover_to_cutover_and_its_shifts_close_or_roll(
    tmp_path: Path, open_shifts: str
) -> None:
    async with open_journal(tmp_path / "journal.db") as journal:
        before, first, last, after = (
            sale(START - 0.001, 100), sale(START, 200), sale(END - 0.001, 400), sale(END, 800)
        )  # fmt: skip
        await insert(journal, before, first, last, after)
        assert await journal.shift_open("T0000001", "S1", at=START + 10)
        assert await journal.shift_open("T0000002", "S2", at=START + 20)

        closed = await closer(journal, open_shifts).close_day(DAY, "cutover")
        assert closed is not None
        terminal = [x for x in await frozen(journal) if x.dimension == "terminal"]
        assert [(x.key, x.category, x.count, x.amount) for x in terminal] == [
            ("T0000001", "sale", 2, first.amount + last.amount)  # type: ignore[operator]
        ]
        shifts = await journal.rows(
            "SELECT shifts_closed, shifts_rolled, open_shifts FROM business_days WHERE day = ?",
            (DAY.isoformat(),),
        )
        if open_shifts == "close":
            assert shifts == [(2, 0, "close")]
            assert await journal.open_shift("T0000001") is None
            record = await journal.shift("T0000002", "S2")
            assert record is not None and record.closed_at == END + 5
            assert record.totals == {"closed_by": "business_day", "day": DAY.isoformat()}
        else:
            assert shifts == [(0, 2, "roll")]
            assert await journal.open_shift("T0000001") == "S1"
            assert await journal.open_shift("T0000002") == "S2"
        # the next day has the sale at the cut-over itself, not this day's
        next_day = await day_lines_now(journal, DAY + dt.timedelta(days=1), CUTOVER)
        assert [(x.count, x.amount) for x in next_day if x.dimension == "terminal"] == [(1, 800)]
        # a day closes once: a second close (this node or another) changes nothing
        assert await closer(journal, open_shifts, at=END + 99).close_day(DAY, "operator") is None
        assert len(await journal.rows("SELECT * FROM business_days", ())) == 1


_ROWS = st.builds(
    dict,
    tender=st.sampled_from(["bank", "fleet", None]),
    route=st.sampled_from(["bank", "ledger", None]),
    terminal_id=st.sampled_from(["T0000001", "T0000002"]),
    operator_id=st.sampled_from(["op1", "op2", None]),
    state=st.sampled_from(["approved", "reversed", "reversal_pending", "declined"]),
    action_code=st.sampled_from(["000", "00", "116", "911"]),
    processing_code=st.sampled_from(["000000", "200000"]),
    amount=st.integers(1, 10**9),
    approved_amount=st.one_of(st.none(), st.integers(0, 10**9)),
    currency=st.sampled_from(["978", "826"]),
    at=st.floats(START, END - 1),
)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_ROWS, max_size=25))
def test_frozen_totals_per_tender_acquirer_terminal_and_operator(specs: list[dict]) -> None:
    rows = [sale(s.pop("at"), **s) for s in (dict(x) for x in specs)]

    async def main() -> list:
        with tempfile.TemporaryDirectory() as tmp:
            async with open_journal(Path(tmp) / "journal.db") as journal:
                await insert(journal, *rows)
                await closer(journal).close_day(DAY, "cutover")
                return await frozen(journal)

    assert trio.run(main) == model(rows)


async def test_a_late_advice_is_booked_to_its_closed_day_and_shown_late(tmp_path: Path) -> None:
    async with open_journal(tmp_path / "journal.db") as journal:
        preauth = sale(END - 60, 5000, mti_class="1", request_mti="1100")
        kept, reversed_later = sale(END - 50, 700), sale(END - 40, 300)
        await insert(journal, preauth, kept, reversed_later)
        await closer(journal, at=END + 1).close_day(DAY, "cutover")
        at_close = await frozen(journal)
        assert at_close == model([preauth, kept, reversed_later])

        # after the cut-over: the pump's completion of the pre-authorisation (its day
        # is the pre-authorisation's), and a reversal of one of the day's sales
        completion = sale(
            END + 30, 4200, request_mti="1220", original_txn_id=preauth.txn_id, stan="900001"
        )
        reversal = sale(
            END + 40, 300, mti_class="4", request_mti="1420", state="approved",
            original_txn_id=reversed_later.txn_id, stan="900002",
        )  # fmt: skip
        await insert(journal, completion, reversal)
        await journal.update(reversed_later.txn_id, state="reversed")
        flagged = await closer(journal, at=END + 50).book_late_day(DAY)
        assert flagged == 2

        assert await frozen(journal) == at_close  # what was frozen stays as it was
        now = model([kept, attrs.evolve(reversed_later, state="reversed"), completion])
        late = await frozen(journal, late=True)
        assert all(line.late for line in late)
        expected_late = {x.group: (x.count, x.amount) for x in now}
        for x in at_close:
            c, a = expected_late.get(x.group, (0, 0))
            expected_late[x.group] = (c - x.count, a - x.amount)
        assert {x.group: (x.count, x.amount) for x in late} == {
            g: v for g, v in expected_late.items() if v != (0, 0)
        }
        assert without_late(at_close + late) != at_close  # the late line adds to the day
        for txn in (completion, reversal):
            row = await journal.get(txn.txn_id)
            assert row is not None and "late" in row.flags
        kept_row = await journal.get(kept.txn_id)
        assert kept_row is not None and "late" not in kept_row.flags
        # booked to its own day, not to the day it arrived in
        next_day = await day_lines_now(journal, DAY + dt.timedelta(days=1), CUTOVER)
        assert next_day == []
        # booking again changes nothing
        again = await closer(journal, at=END + 60).book_late_day(DAY)
        assert again == 0
        assert await frozen(journal, late=True) == late


async def test_the_task_closes_the_day_at_its_cutover(tmp_path: Path) -> None:
    """`BusinessDay.run`, as in the switch's nursery, with a clock 0.3 s before the
    cut-over: it closes the day when the cut-over passes, and not before."""
    skew = END - 0.3 - trio.current_time()

    def clock() -> float:
        return trio.current_time() + skew

    async with open_journal(tmp_path / "journal.db") as journal:
        await insert(journal, sale(END - 10, 4321))
        config = BusinessDayConfig(CUTOVER, open_shifts="close", late_every_s=3600)
        task = BusinessDay(config, journal, {}, "n1", clock=clock, poll_s=3600, acquirers=())
        async with trio.open_nursery() as nursery:
            await nursery.start(task.run)
            assert await journal.rows("SELECT day FROM business_days", ()) == []
            with trio.fail_after(5):
                while not await journal.rows("SELECT day FROM business_days", ()):
                    await trio.sleep(0.02)
            assert clock() >= END
            nursery.cancel_scope.cancel()
        rows = await journal.rows("SELECT day, reason, closed_by FROM business_days", ())
        assert rows == [(DAY.isoformat(), "cutover", "n1")]
        terminal = [x for x in await frozen(journal) if x.dimension == "terminal"]
        assert [(x.count, x.amount) for x in terminal] == [(1, 4321)]
