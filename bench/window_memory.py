"""What the switch's in-memory windows cost: bytes per entry, and a full collection.

The duplicate window (`matching.TerminalRequests`) holds up to `[journal]
duplicate_window` finished requests (200,000 by default). Filled here the way the
switch fills it (ULID-like transaction ids, 50 terminals, amounts), measured with
tracemalloc, then one full collection timed with the window alive.

    .venv/bin/python bench/window_memory.py --entries 200000
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time
import tracemalloc

from forecourt.switch.matching import FinishedRequest, TerminalRequests


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=200_000)
    args = parser.parse_args()
    n = args.entries
    terminals = [f"L{i:07d}" for i in range(1, 51)]
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    window = TerminalRequests(window=n)
    for i in range(n):
        txn_id = "01" + os.urandom(12).hex()[:24].upper()  # 26 characters, as a ULID
        stan = f"{i % 999_999 + 1:06d}"
        window.remember(("2", terminals[i % 50], stan), FinishedRequest(txn_id, f"{i:012d}"))
    used = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    gc.collect()
    started = time.perf_counter()
    gc.collect()
    full_ms = (time.perf_counter() - started) * 1000
    print(
        json.dumps(
            {
                "benchmark": "window_memory",
                "entries": n,
                "duplicate_window_bytes_per_entry": round(used / n, 1),
                "duplicate_window_mb": round(used / 1e6, 1),
                "full_collection_ms": round(full_ms, 1),
                "tracked_objects": len(gc.get_objects()),
                "python": sys.version.split()[0],
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
