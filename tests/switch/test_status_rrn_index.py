"""A status query by RRN goes through its own index (migration `transactions_terminal_rrn`)
on both backends, not through a read of every row the asking terminal has."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from forecourt.switch.journal import open_journal
from forecourt.switch.status_records import _BY_RRN


async def test_the_rrn_lookup_is_an_index_search_on_sqlite(tmp_path: Path) -> None:
    async with open_journal(tmp_path / "journal.db"):
        pass  # the switch's own migrations
    with sqlite3.connect(tmp_path / "journal.db") as db:
        plan = " ".join(row[-1] for row in db.execute(f"EXPLAIN QUERY PLAN {_BY_RRN}", ("T1", "R")))
    # before: SEARCH transactions USING INDEX transactions_shift (terminal_id=?), every row
    assert "USING INDEX transactions_terminal_rrn (terminal_id=? AND rrn=?)" in plan, plan


@pytest.mark.postgres
async def test_the_rrn_index_exists_on_postgres(postgres_db: str) -> None:
    async with open_journal(postgres_db) as journal:
        rows = await journal.view(
            "SELECT indexdef FROM pg_indexes WHERE indexname = ?", ("transactions_terminal_rrn",)
        )
    assert [r["indexdef"] for r in rows] == [
        "CREATE INDEX transactions_terminal_rrn ON public.transactions"
        " USING btree (terminal_id, rrn, received_at)"
    ]
