"""The web console's journal reads against a big journal: how long each page's query
takes (median of repeated reads, in a worker thread as the console runs them).

Fills a SQLite journal (the switch's schema, its migrations) with ``--rows``
transactions over the 30 days before the last two minutes, 2,000 terminals, PANs of
200 BINs, plus ``--window-rate`` per second for the last two minutes (the
dashboard's window), then times the dashboard, the terminals page's
"last seen", and transaction searches by terminal, RRN and PAN (common and rare).
Prints JSON.

    .venv/bin/python bench/console_reads.py --rows 2000000
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import trio
from forecourt.console.data import ConsoleData, TxnQuery
from forecourt.switch.journal import open_journal
from forecourt.switch.journal.sqlite import SqliteJournal

_INSERT = (
    "INSERT INTO transactions (txn_id, node, terminal_id, stan, mti_class, request_mti,"
    " state, received_at, amount, currency, masked_pan, rrn, switch_ms)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def _fill(path: Path, count: int, batch: int = 100_000) -> None:
    """``count`` older transactions, oldest first, in large transactions."""
    SqliteJournal(path, "full").close()
    end = time.time() - 120.0
    start = end - 30 * 86400.0
    rnd = random.Random(7)
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA synchronous = OFF")
        for first in range(0, count, batch):
            db.executemany(
                _INSERT,
                [
                    (
                        f"F{n:025d}", "bench", f"T{rnd.randrange(2000):07d}", f"{n % 999999:06d}",
                        "2", "1200", "approved" if rnd.random() < 0.93 else "declined",
                        start + (end - start) * n / count, rnd.randrange(500, 20000), "978",
                        f"{400000 + rnd.randrange(200)}******{rnd.randrange(10000):04d}",
                        f"{n + 10**9:012d}", rnd.uniform(0.5, 30.0),
                    )
                    for n in range(first, min(count, first + batch))
                ],
            )  # fmt: skip
            db.commit()


def _window(path: Path, rate: int, seconds: int = 120) -> int:
    """``rate`` approved purchases a second over the last ``seconds`` (the dashboard)."""
    now = time.time()
    rnd = random.Random(3)
    rows = [
        (
            f"W{n:025d}", "bench", f"W{n % 200:07d}", f"{n % 999999:06d}", "2", "1200",
            "approved" if rnd.random() < 0.93 else "declined", now - seconds + n / rate,
            4250, "978", "476173******0010", f"{n:012d}", rnd.uniform(0.5, 30.0),
        )
        for n in range(rate * seconds)
    ]  # fmt: skip
    with sqlite3.connect(path) as db:
        db.executemany(_INSERT, rows)
    return len(rows)


async def _timed(fn: Callable[[], Awaitable[object]], repeat: int) -> dict[str, float]:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        await fn()
        times.append((time.perf_counter() - started) * 1000.0)
    return {"median_ms": round(statistics.median(times), 2), "max_ms": round(max(times), 2)}


async def _measure(path: Path, repeat: int) -> dict[str, Any]:
    async with open_journal(path) as journal:
        data = ConsoleData(journal)
        try:
            seconds = itertools.count(1)
            reads: dict[str, Callable[[], Awaitable[object]]] = {
                # a second apart each time, so the once-a-second cache is never hit
                "dashboard": lambda: data.dashboard(now=time.time() - next(seconds)),
                "terminals_last_seen": data.last_seen,
                "search_terminal": lambda: data.transactions(TxnQuery(terminal="T0000007")),
                "search_rrn_whole_journal": lambda: data.transactions(TxnQuery(rrn="000000000042")),
                "search_rrn_last_day": lambda: data.transactions(
                    TxnQuery(rrn="000000000042", since=time.time() - 86400)
                ),
                "search_pan_common_last4": lambda: data.transactions(TxnQuery(pan_like="%0010")),
                "search_pan_bin": lambda: data.transactions(TxnQuery(pan_like="400042%")),
                "search_pan_absent_whole_journal": lambda: data.transactions(
                    TxnQuery(pan_like="999999%")
                ),
                "search_pan_absent_last_day": lambda: data.transactions(
                    TxnQuery(pan_like="999999%", since=time.time() - 86400)
                ),
                "shifts": data.shifts,
            }
            return {name: await _timed(fn, repeat) for name, fn in reads.items()}
        finally:
            data.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=2_000_000, help="older transactions")
    parser.add_argument("--window-rate", type=int, default=600, help="per second, last 2 min")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="forecourt-console-bench-") as tmp:
        path = Path(tmp) / "journal.db"
        started = time.perf_counter()
        _fill(path, args.rows)
        window = _window(path, args.window_rate)
        filled_s = time.perf_counter() - started
        result = trio.run(_measure, path, args.repeat)
    json.dump(
        {"rows": args.rows + window, "window_rows": window, "fill_s": round(filled_s, 1),
         "reads": result},
        sys.stdout, indent=2,
    )  # fmt: skip
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
