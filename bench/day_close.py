"""How long closing a business day takes on SQLite: freeze N journal rows' totals,
then count the day again for its late lines. Prints one JSON object.

    .venv/bin/python bench/day_close.py [ROWS]   (default 200,000)

Rows are spread over one day across 20 terminals, 4 operators, 3 tenders and 2
acquirers, 5 % reversed and 3 % refunds; 1 % arrive as completions after the close.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import sys
import tempfile
import time
from pathlib import Path

import trio
from forecourt.switch.business_day import Cutover, day_bounds
from forecourt.switch.config_business_day import BusinessDayConfig
from forecourt.switch.day.closer import BusinessDay
from forecourt.switch.journal import InsertTransaction, JournalRow, new_txn_id, open_journal

DAY = dt.date(2026, 11, 30)
CUTOVER = Cutover(2, 0, 60)


def _row(rng: random.Random, at: float, i: int, **over: object) -> JournalRow:
    fields: dict[str, object] = {
        "txn_id": new_txn_id(),
        "node": "n1",
        "terminal_id": f"T{rng.randrange(20):07d}",
        "stan": f"{i % 999_999:06d}",
        "mti_class": "2",
        "request_mti": "1200",
        "received_at": at,
        "answered_at": at + 0.2,
        "state": "reversed" if rng.random() < 0.05 else "approved",
        "action_code": "000",
        "amount": rng.randrange(500, 20_000),
        "currency": "978",
        "processing_code": "200000" if rng.random() < 0.03 else "000000",
        "route": rng.choice(["bank", "ledger"]),
        "tender": rng.choice(["bank", "fleet", "consumer"]),
        "operator_id": rng.choice(["op1", "op2", "op3", None]),
    }
    fields.update(over)
    return JournalRow(**fields)  # type: ignore[arg-type]


class _WriterTime:
    """Seconds the journal's writer spent in the database (what every terminal's write
    would have waited behind), from its batch hook."""

    def __init__(self, journal: object) -> None:
        self.seconds = 0.0
        journal.on_batch = self._batch  # type: ignore[attr-defined]

    def _batch(self, writes: int, seconds: float) -> None:
        self.seconds += seconds

    def take(self) -> float:
        spent, self.seconds = self.seconds, 0.0
        return spent


async def main(rows: int) -> dict[str, object]:
    rng = random.Random(1)
    start, end = day_bounds(DAY, CUTOVER)
    with tempfile.TemporaryDirectory() as tmp:
        async with open_journal(Path(tmp) / "journal.db") as journal:
            batch = [_row(rng, rng.uniform(start, end), i) for i in range(rows)]
            for k in range(0, rows, 5000):
                await journal.write(*(InsertTransaction(r) for r in batch[k : k + 5000]))
            closer = BusinessDay(
                BusinessDayConfig(CUTOVER), journal, {}, "n1", clock=lambda: end + 1, acquirers=()
            )
            writer = _WriterTime(journal)
            t0 = time.perf_counter()
            await closer.close_day(DAY, "cutover")
            close_s = time.perf_counter() - t0
            close_writer_s = writer.take()
            late = [
                _row(rng, end + 10 + i, rows + i, request_mti="1220", original_txn_id=r.txn_id)
                for i, r in enumerate(batch[: rows // 100])
            ]
            await journal.write(*(InsertTransaction(r) for r in late))
            t0 = time.perf_counter()
            flagged = await closer.book_late_day(DAY)
            late_s = time.perf_counter() - t0
            late_writer_s = writer.take()
            lines = await journal.rows("SELECT count(*) FROM business_day_totals", ())
    return {
        "bench": "day_close",
        "backend": "sqlite",
        "rows": rows,
        "close_s": round(close_s, 3),
        "book_late_s": round(late_s, 3),
        "close_writer_s": round(close_writer_s, 4),
        "book_late_writer_s": round(late_writer_s, 4),
        "late_rows_flagged": flagged,
        "total_lines": lines[0][0],
    }


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    print(json.dumps(trio.run(main, n)))
