"""The business day on PostgreSQL: two nodes close one day once, and a day's frozen
and late totals are the same as on SQLite."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import trio
from forecourt.switch.business_day import Cutover, day_bounds
from forecourt.switch.config_business_day import BusinessDayConfig
from forecourt.switch.day import DayClosed
from forecourt.switch.day.closer import BusinessDay
from forecourt.switch.day.store import frozen_lines
from forecourt.switch.journal import Journal, JournalRow, open_journal

from tests.day.rows import insert, sale

pytestmark = pytest.mark.postgres

CUTOVER = Cutover(4, 30, -300)
DAY = dt.date(2026, 11, 29)
START, END = day_bounds(DAY, CUTOVER)


def closer(journal: Journal, node: str) -> BusinessDay:
    config = BusinessDayConfig(CUTOVER, open_shifts="close")
    return BusinessDay(config, journal, {}, node, clock=lambda: END + 1, acquirers=("bank",))


async def lines(journal: Journal, late: bool) -> list:
    rows = await journal.rows(
        "SELECT dimension, key, currency, category, count, amount, late FROM business_day_totals"
        " WHERE day = ? AND late = ? ORDER BY dimension, key, currency, category",
        (DAY.isoformat(), late),
    )
    return frozen_lines(lambda _sql, _params: rows, "")


def the_day() -> tuple[list[JournalRow], list[JournalRow]]:
    """A day's rows, and the late ones that come after its close."""
    preauth = sale(END - 90, 6000, mti_class="1", request_mti="1100")
    rows = [
        preauth,
        sale(START + 1, 1500, tender="fleet", route="ledger", operator_id=None),
        sale(START + 2, 2500, terminal_id="T0000002", operator_id="op2"),
        sale(START + 3, 900, processing_code="200000"),
        sale(START + 4, 800, state="reversed"),
        sale(START + 5, 700, approved_amount=350),
        sale(START + 6, 600, state="declined", action_code="116"),
    ]
    late = [sale(END + 20, 5800, request_mti="1220", original_txn_id=preauth.txn_id)]
    return rows, late


async def test_two_nodes_close_one_day_once(postgres_db: str) -> None:
    rows, _ = the_day()
    async with (
        open_journal(postgres_db, node="n1") as one,
        open_journal(postgres_db, node="n2") as two,
    ):
        await insert(one, *rows)
        assert await one.shift_open("T0000001", "S1", at=START)
        results: dict[str, object] = {}

        async def close(journal: Journal, node: str) -> None:
            results[node] = await closer(journal, node).close_day(DAY, "cutover")

        async with trio.open_nursery() as nursery:
            nursery.start_soon(close, one, "n1")
            nursery.start_soon(close, two, "n2")
        winners = [n for n, r in results.items() if isinstance(r, DayClosed)]
        assert len(winners) == 1 and sorted(results) == ["n1", "n2"]
        losers = [n for n, r in results.items() if r is None]
        assert len(losers) == 1
        day = await one.rows("SELECT closed_by, shifts_closed FROM business_days", ())
        assert day == [(winners[0], 1)]
        # one freeze, one host-totals request: nothing doubled by the loser
        requests = await two.rows("SELECT day, acquirer, state FROM host_totals", ())
        assert requests == [(DAY.isoformat(), "bank", "pending")]
        frozen = await lines(two, False)
        terminal = [x for x in frozen if x.dimension == "terminal" and x.key == "T0000002"]
        assert [(x.category, x.count, x.amount) for x in terminal] == [("sale", 1, 2500)]


async def _close_and_book(journal: Journal) -> tuple[list, list]:
    rows, late = the_day()
    await insert(journal, *rows)
    await closer(journal, "n1").close_day(DAY, "cutover")
    await insert(journal, *late)
    await closer(journal, "n1").book_late_day(DAY)
    return await lines(journal, False), await lines(journal, True)


async def test_a_days_totals_are_the_same_on_sqlite_and_postgresql(
    tmp_path: Path, postgres_db: str
) -> None:
    async with open_journal(tmp_path / "journal.db") as lite:
        on_sqlite = await _close_and_book(lite)
    async with open_journal(postgres_db) as pg:
        on_postgres = await _close_and_book(pg)
    assert on_sqlite == on_postgres
    frozen, late = on_sqlite
    assert {x.category for x in frozen} == {"sale", "refund", "sale_reversal"}
    assert [(x.dimension, x.category, x.count, x.amount) for x in late if x.key == "bank"] == [
        ("acquirer", "sale", 1, 5800),
        ("tender", "sale", 1, 5800),
    ]
