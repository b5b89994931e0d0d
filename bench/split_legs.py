"""What a split-tender leg costs over a plain purchase, through the switch.

One terminal, sequential requests (closed loop, one outstanding), real sockets,
the switch with a SQLite journal (synchronous = full) in a temporary directory and
two ISO 8583 acquirer simulators (the tests' split set-up, tests/switch/split_harness.py).
Measures the terminal-side latency of plain purchases, and of the legs of split
sales (fleet partial, consumer partial, bank card for the rest). A leg reads its
group and makes one extra durable write (the claim) before it is forwarded.

    .venv/bin/python bench/split_legs.py --sales 200
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from forecourt.codecs.split import SplitGroup
from forecourt.switch.log import configure_logging

from tests.switch.split_harness import (
    BANK_PAN,
    amount_due,
    consumer_pan,
    fleet_pan,
    split_switch,
)


def _summary(seconds: list[float]) -> dict[str, float]:
    ms = sorted(s * 1000 for s in seconds)
    return {
        "n": len(ms),
        "p50_ms": round(statistics.median(ms), 3),
        "p90_ms": round(ms[int(len(ms) * 0.9) - 1], 3),
        "mean_ms": round(statistics.fmean(ms), 3),
    }


async def _run(sales: int) -> dict[str, object]:
    plain: list[float] = []
    legs: list[float] = []
    with tempfile.TemporaryDirectory() as d:
        async with split_switch(Path(d)) as sw, sw.terminal() as term:
            for _ in range(20):  # warm-up
                await term.exchange(term.purchase(1000))
            for n in range(sales):
                started = time.perf_counter()
                await term.exchange(term.purchase(1000))
                plain.append(time.perf_counter() - started)
                group = SplitGroup(f"{n + 1:09d}", 20000)
                for pan, amount in (
                    (fleet_pan(n), 20000),
                    (consumer_pan(n), 5000),
                    (BANK_PAN, 2000),
                ):
                    started = time.perf_counter()
                    answer = await sw.leg(term, pan, amount, group)
                    legs.append(time.perf_counter() - started)
                assert amount_due(answer) == 0
    p, leg = _summary(plain), _summary(legs)
    return {
        "benchmark": "split_legs",
        "sales": sales,
        "plain_purchase": p,
        "split_leg": leg,
        "leg_over_plain_p50_ms": round(leg["p50_ms"] - p["p50_ms"], 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sales", type=int, default=200)
    args = parser.parse_args()
    configure_logging("error", "json", stream=sys.stderr)
    print(json.dumps(trio.run(_run, args.sales), indent=2))


if __name__ == "__main__":
    main()
