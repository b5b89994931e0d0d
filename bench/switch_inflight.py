"""Benchmark 4: 1,500 transactions in flight at once; the host delays each answer by 1 s.

The acquirer simulator answers every purchase after ``--delay`` seconds; the
load generator keeps ``--in-flight`` requests outstanding (closed loop, spread
over ``--terminals`` terminals). Reports answered / lost (timeouts, errors) /
mismatched (answers to no outstanding request) and the latency percentiles.
Prints one JSON object.

    .venv/bin/python bench/switch_inflight.py --in-flight 1500 --duration 15
"""

from __future__ import annotations

import argparse
import sys

import _harness as h


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--in-flight", type=int, default=1500)
    parser.add_argument("--terminals", type=int, default=500)
    parser.add_argument("--delay", type=float, default=1.0)
    parser.add_argument("--duration", type=float, default=15.0)
    args = parser.parse_args()
    rules = f'[[rules]]\nname = "slow host"\naction = "delay"\ndelay_s = {args.delay}\n'
    per_terminal = -(-args.in_flight // args.terminals)
    with h.acquirer_rig(args.terminals, rules) as rig:
        work, data_dir, acquirer_port = rig.work, rig.data_dir, rig.acquirer_port
        switch, port, _metrics = h.start_switch(
            work,
            data_dir,
            acquirer_port,
            max_in_flight=per_terminal,
            link_in_flight=2 * args.in_flight,
            max_connections=args.terminals + 100,
        )
        with h.stopping(switch):
            result = h.run_load(
                work,
                port,
                terminals=args.terminals,
                concurrency=args.in_flight,
                duration=args.duration,
                timeout=10.0,
                mac={"mac": "store", "data-dir": str(data_dir)},
            )
            rss = switch.rss_mb()
    lost = (
        int(result["timeouts"])
        + int(result["errors"])
        + int(result["sent"])
        - int(result["answered"])
    )
    h.emit(
        {
            "benchmark": "in_flight",
            "in_flight": args.in_flight,
            "host_delay_s": args.delay,
            "sent": result["sent"],
            "answered": result["answered"],
            "lost": lost,
            "mismatched": result["unmatched"],
            "by_action_code": result["by_action_code"],
            "throughput_per_s": result["throughput_per_s"],
            "latency_ms": result["latency_ms"],
            "switch_rss_mb": rss,
            "machine": h.machine(),
        }
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
