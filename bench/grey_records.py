"""Benchmark: grey records per second on SQLite, one node, through the journal writer.

`--concurrency` tasks each take a card of their own and run card transactions one
after another for `--seconds`: a grey-lock (`GreyLock`: the record written) and
then either its result (`GreyResult`: closed and the mirror debited, one
transaction) or, every fourth, an unlock (`GreyUnlock`, the card pulled). SQLite
with synchronous=FULL in a temporary directory. Prints one JSON object.

    .venv/bin/python bench/grey_records.py
    .venv/bin/python bench/grey_records.py --seconds 5 --concurrency 64
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import trio
from forecourt.codecs.masking import mask_pan
from forecourt.switch.grey import CardFacts, GreyAnswer, GreyLock, GreyResult, GreyUnlock
from forecourt.switch.journal import open_journal
from forecourt.switch.ledger import LedgerAddCard, LedgerFund, LedgerOpenAccount, card_reference

KEY = bytes(range(32))


async def _run(target: Path, seconds: float, concurrency: int) -> dict[str, Any]:
    async with open_journal(target, node="bench") as journal:
        now = time.time()
        refs = []
        for n in range(concurrency):
            pan = f"7090{n:012d}"
            refs.append(card_reference(KEY, pan))
            await journal.write(
                LedgerOpenAccount(f"IC{n}", "consumer", "", "978", now, "bench"),
                LedgerFund(f"IC{n}", "topup", 10**11, "bench", now, "bench"),
                LedgerAddCard(refs[-1], mask_pan(pan), f"IC{n}", "none", "", (), now, "bench"),
            )
        done = {"locks": 0, "results": 0, "unlocks": 0}
        latencies: list[float] = []
        deadline = trio.current_time() + seconds

        async def card(n: int) -> None:
            atc = 0
            while trio.current_time() < deadline:
                atc += 1
                facts = CardFacts(
                    refs[n], atc % 65536, 1000 + atc, "978", "T0000001", "01", "01",
                    "261201120000", "A1B2C3D4", "bench", time.time(),
                )  # fmt: skip
                started = time.perf_counter()
                (locked,) = await journal.write(GreyLock(facts))
                assert isinstance(locked, GreyAnswer) and locked.new
                done["locks"] += 1
                if atc % 4 == 0:
                    (closed,) = await journal.write(
                        GreyUnlock(refs[n], None, "T0000002", "bench", time.time())
                    )
                    done["unlocks"] += 1
                else:
                    (closed,) = await journal.write(GreyResult(facts))
                    done["results"] += 1
                assert isinstance(closed, GreyAnswer) and closed.new
                latencies.append(time.perf_counter() - started)

        started = time.perf_counter()
        async with trio.open_nursery() as nursery:
            for n in range(concurrency):
                nursery.start_soon(card, n)
        elapsed = time.perf_counter() - started
    latencies.sort()
    closed = done["results"] + done["unlocks"]
    return {
        "backend": "sqlite (synchronous=FULL)",
        "concurrency": concurrency,
        "seconds": round(elapsed, 2),
        **done,
        "card_transactions_per_s": round(closed / elapsed, 1),
        "lock_and_close_p50_ms": round(latencies[len(latencies) // 2] * 1000, 2),
        "lock_and_close_p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1000, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        result = trio.run(_run, Path(tmp) / "journal.db", args.seconds, args.concurrency)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
