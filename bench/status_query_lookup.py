"""Status query lookups against a terminal with many journalled transactions.

The status query finds the original by STAN (the `transactions_terminal_key` index)
or by RRN (the `transactions_terminal_rrn` index, journal migration 16; before it the
RRN lookup read every row of the terminal). This measures both as the flow runs
them (`find_original` on a pooled reader, then the query's own row through the
writer), on a SQLite journal where one terminal holds ``--rows`` transactions
among ``--terminals`` others' (filled directly with executemany after the switch's
own migrations), so what the index saves is a number, not a guess.

    .venv/bin/python bench/status_query_lookup.py --rows 100000 --queries 200
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

import trio
from forecourt.switch.journal import open_journal
from forecourt.switch.journal.sqlite import SqliteJournal
from forecourt.switch.status_records import AnswerStatusQuery, RecordStatusQuery, find_original


def fill(db: Path, rows: int, terminals: int) -> float:
    SqliteJournal(db, "normal").close()  # the switch's schema
    started = time.perf_counter()
    now = time.time()
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA synchronous = OFF")
        batch = []
        for t in range(terminals):
            for n in range(rows):
                batch.append(
                    (
                        f"X{t:04d}{n:09d}",
                        "bench",
                        f"T{t:07d}",
                        f"{n % 999_999 + 1:06d}",
                        "2",
                        "1200",
                        "approved",
                        "000",
                        1000,
                        1000,
                        f"R{t:03d}{n:08d}",
                        "A1B2C3",
                        now - (rows - n) * 0.5,  # within the last day
                    )
                )
                if len(batch) >= 50_000:
                    conn.executemany(_INSERT, batch)
                    batch.clear()
        conn.executemany(_INSERT, batch)
    return time.perf_counter() - started


_INSERT = (
    "INSERT INTO transactions (txn_id, node, terminal_id, stan, mti_class, request_mti, state,"
    " action_code, amount, approved_amount, rrn, auth_code, received_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


async def measure(db: Path, rows: int, queries: int) -> dict[str, float]:
    day = time.strftime("%y%m%d", time.gmtime())
    out: dict[str, float] = {}
    async with open_journal(db) as journal:
        for name in ("stan", "rrn"):
            seconds = []
            for q in range(queries):
                n = rows - 1 - (q * 7919) % rows  # spread over the terminal's history
                if name == "stan":
                    op = AnswerStatusQuery(
                        "T0000000", "900000", time.time(), "2", f"{n % 999_999 + 1:06d}", day
                    )
                else:
                    op = AnswerStatusQuery("T0000000", "900000", time.time(), rrn=f"R000{n:08d}")
                started = time.perf_counter()
                outcome = await find_original(journal, op)
                looked = time.perf_counter()
                await journal.write(RecordStatusQuery(op, outcome))
                seconds.append(looked - started)
                assert outcome.state == "A"
            seconds.sort()
            out[f"lookup_by_{name}_p50_ms"] = round(statistics.median(seconds) * 1000, 3)
            out[f"lookup_by_{name}_p99_ms"] = round(seconds[int(len(seconds) * 0.99) - 1] * 1000, 3)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000, help="transactions per terminal")
    parser.add_argument("--terminals", type=int, default=3, help="terminals so filled")
    parser.add_argument("--queries", type=int, default=200, help="queries of each kind")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as d:
        db = Path(d) / "journal.db"
        fill_s = fill(db, args.rows, args.terminals)
        figures = trio.run(measure, db, args.rows, args.queries)
    print(
        json.dumps(
            {
                "rows_per_terminal": args.rows,
                "terminals": args.terminals,
                "queries": args.queries,
                "fill_s": round(fill_s, 1),
                **figures,
            }
        )
    )


if __name__ == "__main__":
    main()
