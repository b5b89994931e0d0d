"""What a wake-up costs on this machine: the same Python work, back to back and spread out.

The switch costs ~0.9 ms of CPU per transaction at saturation and ~2.2 ms at 300/s
(docs/performance.md). This separates the machine's part of that from the switch's:
one fixed piece of work (three IFSF 1200 decode + encode round trips, the codec
work of a transaction and a half) is timed with the thread's own CPU clock

- back to back;
- with a sleep between calls (as the event loop sleeps in ``epoll_wait`` between
  transactions at low load), timing only the work;
- with a busy wait between calls (the core stays awake, other code runs between);

and the CPU of a bare sleep and wake-up is timed alone. Rounds alternate, pinned to
one CPU; medians over rounds. Prints one JSON object.

    .venv/bin/python bench/machine_wakeups.py [--calls 1500] [--rounds 5] [--gap-ms 3.3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

import _harness as h
from forecourt.codecs.dialect import decode, encode, get_dialect
from forecourt.codecs.message import Message

DIALECT = get_dialect("ifsf")
RAW = encode(
    DIALECT,
    Message(
        "1200",
        {
            "3": "000000",
            "4": "000000005000",
            "11": "000123",
            "12": "261122101010",
            "22": "C10101214144",
            "24": "200",
            "25": "1000",
            "41": "T0000001",
            "42": "STATION00000001",
            "49": "978",
        },
    ),
)


def work() -> None:
    for _ in range(3):
        encode(DIALECT, decode(DIALECT, RAW))


def timed_calls(calls: int, between: Callable[[], None]) -> float:
    """Thread CPU µs per call of `work` alone, `between` run after each call."""
    total = 0.0
    for _ in range(calls):
        started = time.thread_time()
        work()
        total += time.thread_time() - started
        between()
    return total / calls * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1500)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--gap-ms", type=float, default=3.3, help="300/s leaves 3.3 ms")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {0})
    gap = args.gap_ms / 1000.0

    def nothing() -> None:
        pass

    def sleep() -> None:
        time.sleep(gap)

    def busy() -> None:
        end = time.perf_counter() + gap
        while time.perf_counter() < end:
            pass

    for _ in range(2000):
        work()
    figures: dict[str, list[float]] = {"back_to_back": [], "sleep_between": [], "busy_between": []}
    bare_sleep: list[float] = []
    for _ in range(args.rounds):
        figures["back_to_back"].append(timed_calls(args.calls, nothing))
        figures["sleep_between"].append(timed_calls(args.calls, sleep))
        figures["busy_between"].append(timed_calls(args.calls, busy))
        started = time.thread_time()
        for _ in range(args.calls):
            time.sleep(gap)
        bare_sleep.append((time.thread_time() - started) / args.calls * 1e6)
    medians = {k: round(statistics.median(v), 1) for k, v in figures.items()}
    h.emit(
        {
            "benchmark": "machine_wakeups",
            "gap_ms": args.gap_ms,
            "calls_per_round": args.calls,
            "rounds": args.rounds,
            "work_cpu_us_per_call_median": medians,
            "work_cpu_us_per_call_rounds": {
                k: [round(x, 1) for x in v] for k, v in figures.items()
            },
            "sleep_and_wake_cpu_us_median": round(statistics.median(bare_sleep), 1),
            "slowdown_after_sleep": round(medians["sleep_between"] / medians["back_to_back"], 2),
            "machine": h.machine(),
        }
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
