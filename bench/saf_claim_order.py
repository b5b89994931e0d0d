"""What SAF's per-transaction order costs a claim: the claim with and without it.

A SQLite journal holding what a busy switch's SAF holds: `--parked` reversals parked
for approved purchases (the hold window: 540,000 at 600/s and 900 s), `--due` items
due now, and stand-in approvals' advices waiting behind their reversals. Each claim of
`--limit` items on one link is timed inside a transaction rolled back, so every run
sees the same queue; once with the statement the switch uses (none of a transaction's
items claimed while an earlier one is due, in flight or flagged) and once with the
statement before it. Prints JSON.

    .venv/bin/python bench/saf_claim_order.py --parked 200000 --due 2000
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

import trio
from forecourt.switch.journal import open_journal
from forecourt.switch.journal.sqlite import SQLITE

# The claim as it was before the order (SQLite spelling, one link).
_UNORDERED = (
    "UPDATE saf SET state = 'in_flight', claimed_by = ?, lease_until = ?, "
    "attempts = attempts + 1 WHERE id IN (SELECT id FROM saf WHERE "
    "((state = 'pending' AND next_attempt_at <= ?) OR "
    "(state = 'in_flight' AND lease_until <= ?)) AND link = ? "
    "ORDER BY id LIMIT ?) "
    "RETURNING id, txn_id, link, mti, payload, attempts, created_at, last_error"
)


def _fill(path: Path, parked: int, due: int, stand_ins: int) -> None:
    now = time.time()
    far = now + 10 * 365 * 86400.0
    rows: list[tuple[object, ...]] = []
    for n in range(parked):
        rows.append((f"P{n:025d}", "bank", "1420", b"x" * 200, far, now - 600.0))
    for n in range(due):
        rows.append((f"D{n:025d}", "bank", "1420", b"x" * 200, now - 1.0, now - 1.0))
    for n in range(stand_ins):  # the reversal due, its advice behind it, its own parked
        txn = f"S{n:025d}"
        rows.append((txn, "bank", "1420", b"x" * 200, now - 1.0, now - 1.0))
        rows.append((txn, "bank", "1220", b"x" * 200, now - 1.0, now - 1.0))
        rows.append((txn, "bank", "1420", b"x" * 200, far, now - 1.0))
    conn = sqlite3.connect(str(path), isolation_level=None)
    conn.execute("BEGIN")
    conn.executemany(SQLITE.insert_saf, rows)
    conn.execute("COMMIT")
    conn.execute("ANALYZE")
    conn.close()


def _time(path: Path, sql: str, params: tuple[object, ...], runs: int) -> dict[str, float]:
    conn = sqlite3.connect(str(path), isolation_level=None)
    took, claimed = [], 0
    for _ in range(runs):
        conn.execute("BEGIN IMMEDIATE")
        started = time.perf_counter()
        claimed = len(conn.execute(sql, params).fetchall())
        took.append(time.perf_counter() - started)
        conn.execute("ROLLBACK")
    conn.close()
    return {
        "claimed": claimed,
        "median_ms": round(statistics.median(took) * 1000, 3),
        "p99_ms": round(sorted(took)[int(len(took) * 0.99) - 1] * 1000, 3),
    }


async def _schema(path: Path) -> None:
    async with open_journal(path, saf_key=bytes(32)):
        pass


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parked", type=int, default=200_000)
    parser.add_argument("--due", type=int, default=2_000)
    parser.add_argument("--stand-ins", type=int, default=500)
    parser.add_argument("--limit", type=int, default=25, help="items a claim takes")
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "journal.db"
        trio.run(_schema, path)
        _fill(path, args.parked, args.due, args.stand_ins)
        now = time.time()
        ordered = (
            "n1",
            now + 60.0,
            now,
            now,
            "bank",
            now,
            args.limit,
        )
        unordered = ("n1", now + 60.0, now, now, "bank", args.limit)
        result = {
            "parked": args.parked,
            "due": args.due,
            "stand_ins": args.stand_ins,
            "limit": args.limit,
            "ordered": _time(path, SQLITE.claim_saf_of_link, ordered, args.runs),
            "unordered": _time(path, _UNORDERED, unordered, args.runs),
        }
    json.dump(result, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
