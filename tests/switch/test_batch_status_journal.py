"""The batch and status query journal operations on both backends: real SQLite files
and the tests' real PostgreSQL (the `postgres` marker), the same statements."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from forecourt.switch.batch_records import AddBatchAdvice, BatchResult, BatchTotals, CloseBatch
from forecourt.switch.journal import InsertTransaction, Journal, JournalRow, open_journal
from forecourt.switch.status_records import (
    AnswerStatusQuery,
    OriginalOutcome,
    RecordStatusQuery,
    find_original,
)


async def _exercise(journal: Journal) -> None:
    now = time.time()
    day = time.strftime("%y%m%d", time.gmtime(now))
    row = JournalRow(
        txn_id="01TXNAPPROVED0000000000000",
        node="n1",
        terminal_id="T1",
        stan="000042",
        mti_class="2",
        request_mti="1200",
        received_at=now,
        state="approved",
        action_code="000",
        amount=4200,
        approved_amount=4100,
        currency="978",
        rrn="RRN000000001",
        auth_code="A1B2C3",
    )
    await journal.write(InsertTransaction(row))

    async def ask(query: AnswerStatusQuery) -> OriginalOutcome:
        outcome = await find_original(journal, query)
        assert await journal.write(RecordStatusQuery(query, outcome)) == [None]
        return outcome

    by_stan = await ask(AnswerStatusQuery("T1", "000050", now, "2", "000042", day))
    assert by_stan == OriginalOutcome("A", row.txn_id, "000", 4100, "978", "A1B2C3", "RRN000000001")
    assert (await ask(AnswerStatusQuery("T1", "000051", now, rrn="RRN000000001"))).state == "A"
    assert (await ask(AnswerStatusQuery("T2", "000052", now, rrn="RRN000000001"))).state == "U"
    assert (await ask(AnswerStatusQuery("T2", "000053", now, "2", "000042", day))).state == "U"
    assert (await ask(AnswerStatusQuery("T1", "000054", now, "1", "000042", day))).state == "U"

    added = []
    for stan, amount in (("000001", 100), ("000002", 250), ("000001", 100)):
        added += await journal.write(AddBatchAdvice("T1", "B1", stan, "x" + stan, amount, now))
    assert added == [True, True, False]  # the repeated advice changes nothing
    (short,) = await journal.write(CloseBatch("T1", "B1", 3, 450, now))
    (right,) = await journal.write(CloseBatch("T1", "B1", 2, 350, now))
    assert short == BatchResult(BatchTotals(2, 350), False, 1)
    assert right == BatchResult(BatchTotals(2, 350), True, 2)
    asked = await journal.view("SELECT terminal_id, asked_by, answered FROM status_queries")
    assert [tuple(r[k] for k in ("terminal_id", "asked_by", "answered")) for r in asked] == [
        ("T1", "stan", "A"),
        ("T1", "rrn", "A"),
        ("T2", "rrn", "U"),
        ("T2", "stan", "U"),
        ("T1", "stan", "U"),
    ]


async def test_batch_and_status_operations_on_sqlite(tmp_path: Path) -> None:
    async with open_journal(tmp_path / "journal.db") as journal:
        await _exercise(journal)


@pytest.mark.postgres
async def test_batch_and_status_operations_on_postgres(postgres_db: str) -> None:
    async with open_journal(postgres_db) as journal:
        await _exercise(journal)
