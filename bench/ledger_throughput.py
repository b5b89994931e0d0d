"""Benchmark: ledger debits per second on SQLite and on PostgreSQL, one node.

One journal (one node's writer, group commit) and `--concurrency` tasks each
sending purchases (`LedgerAuthorise`, a hold and its capture with the check, in
one transaction) one after another for `--seconds`, first spread over `--accounts`
accounts, then all on one account (the hot row: every debit waits for the row
lock of the one before it on PostgreSQL). SQLite with synchronous=FULL in a
temporary directory; PostgreSQL a throwaway cluster with fsync on (bench/_nodes.py).
Prints one JSON object.

    .venv/bin/python bench/ledger_throughput.py
    .venv/bin/python bench/ledger_throughput.py --seconds 5 --concurrency 64 --no-postgres
"""

from __future__ import annotations

import argparse
import itertools
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import _nodes
import trio
from forecourt.codecs.masking import mask_pan
from forecourt.switch.journal import open_journal
from forecourt.switch.ledger import (
    Decision,
    LedgerAddCard,
    LedgerAuthorise,
    LedgerFund,
    LedgerOpenAccount,
    SaleFacts,
    card_reference,
)

KEY = bytes(range(32))
FACTS = SaleFacts()


def _pan(n: int) -> str:
    return f"7077{n:012d}"


async def _run(
    target: str | Path, accounts: int, seconds: float, concurrency: int
) -> dict[str, Any]:
    async with open_journal(target, node="bench") as journal:
        now = time.time()
        for n in range(accounts):
            await journal.write(
                LedgerOpenAccount(f"A{n}", "fleet", "", "978", now, "bench"),
                LedgerFund(f"A{n}", "topup", 10**11, "bench", now, "bench"),
                LedgerAddCard(card_reference(KEY, _pan(n)), mask_pan(_pan(n)), f"A{n}",
                              "vehicle", "BENCH", (), now, "bench"),
            )  # fmt: skip
        refs = [card_reference(KEY, _pan(n)) for n in range(accounts)]
        counter = itertools.count()
        done = 0
        latencies: list[float] = []
        deadline = trio.current_time() + seconds

        async def debits(worker: int) -> None:
            nonlocal done
            while trio.current_time() < deadline:
                n = next(counter)
                op = LedgerAuthorise(f"B|{n:09d}|{worker}", refs[n % accounts], "purchase", 100,
                                     "978", FACTS, time.time())  # fmt: skip
                started = time.perf_counter()
                (decision,) = await journal.write(op)
                latencies.append(time.perf_counter() - started)
                assert isinstance(decision, Decision) and decision.code == "approved"
                done += 1

        started = trio.current_time()
        async with trio.open_nursery() as nursery:
            for worker in range(concurrency):
                nursery.start_soon(debits, worker)
        elapsed = trio.current_time() - started
        latencies.sort()
        return {
            "accounts": accounts,
            "debits": done,
            "seconds": round(elapsed, 2),
            "debits_per_s": round(done / elapsed, 1),
            "p50_ms": round(latencies[len(latencies) // 2] * 1000, 2),
            "p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1000, 2),
            "commits": journal.commits,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--accounts", type=int, default=200)
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    result: dict[str, Any] = {
        "bench": "ledger_throughput",
        "concurrency": args.concurrency,
        "what": "LedgerAuthorise purchases through one journal writer (one node)",
    }
    with tempfile.TemporaryDirectory(prefix="forecourt-ledger-bench-") as tmp:
        for name, accounts in (("many_accounts", args.accounts), ("one_account", 1)):
            path = Path(tmp) / f"{name}.db"
            result[f"sqlite_{name}"] = trio.run(
                _run, path, accounts, args.seconds, args.concurrency
            )
    if not args.no_postgres:
        with _nodes.postgres() as dsn:
            import psycopg

            for name, accounts in (("many_accounts", args.accounts), ("one_account", 1)):
                with psycopg.connect(dsn, autocommit=True) as conn:
                    conn.execute(f"CREATE DATABASE {name}")
                db = dsn.rsplit("/", 1)[0] + "/" + name
                result[f"postgres_{name}"] = trio.run(
                    _run, db, accounts, args.seconds, args.concurrency
                )
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
