"""Benchmark 2: switch-added latency at a fixed offered rate (half of B's maximum).

Finds B's maximum with a short closed-loop run through the switch (or takes
``--max-rate``), then offers half of it open loop (``forecourt sim load --rate``)
and reports p50/p99/p99.9 of the switch-added time (switch receive to switch
answer, minus host time) from the switch's own histogram
(``forecourt_switch_latency_seconds`` on /metrics, the delta over the run,
Prometheus-style interpolation inside buckets), and the client's view: the
latency through the switch minus the latency straight to the simulator at the
same rate. Prints one JSON object.

    .venv/bin/python bench/switch_latency.py --duration 20

``--rate R`` offers R instead (no probe); ``--synchronous normal`` runs the journal
without an fsync per commit, to tell the disk's share of the added time from the
switch's own.
"""

from __future__ import annotations

import argparse
import sys

import _harness as h

NAME = "forecourt_switch_latency_seconds"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--terminals", type=int, default=50)
    parser.add_argument("--max-rate", type=float, help="B's maximum (default: measure it)")
    parser.add_argument("--rate", type=float, help="offered rate (default: half of B's maximum)")
    parser.add_argument("--synchronous", default="full", choices=("full", "normal"))
    args = parser.parse_args()
    with h.acquirer_rig(args.terminals) as rig:
        work, data_dir, zak, acquirer_port = rig.work, rig.data_dir, rig.zak, rig.acquirer_port
        switch, port, metrics = h.start_switch(
            work, data_dir, acquirer_port, synchronous=args.synchronous
        )
        with h.stopping(switch):
            mac_b = {"mac": "store", "data-dir": str(data_dir)}
            mac_a = {"mac": "key", "mac-key": zak.hex()}
            maximum = args.max_rate
            if maximum is None and args.rate is None:
                probe = h.run_load(
                    work,
                    port,
                    terminals=args.terminals,
                    concurrency=200,
                    duration=8,
                    mac=mac_b,
                    tag="probe",
                )
                maximum = float(probe["throughput_per_s"])
            rate = args.rate if args.rate is not None else round(float(maximum or 0) / 2, 1)
            direct = h.run_load(
                work,
                acquirer_port,
                terminals=args.terminals,
                rate=rate,
                duration=args.duration,
                mac=mac_a,
                tag="direct",
            )
            before = h.histogram(h.scrape(metrics), NAME)[0]
            through = h.run_load(
                work,
                port,
                terminals=args.terminals,
                rate=rate,
                duration=args.duration,
                mac=mac_b,
                tag="through",
            )
            after = h.histogram(h.scrape(metrics), NAME)[0]
    delta = h.histogram_delta(after, before)

    def ms(q: float) -> float | None:
        v = h.quantile(delta, q)
        return None if v is None else round(v * 1000, 3)

    lat_b, lat_a = through["latency_ms"], direct["latency_ms"]
    h.emit(
        {
            "benchmark": "added_latency",
            "b_max_per_s": maximum,
            "offered_per_s": rate,
            "synchronous": args.synchronous,
            "achieved_per_s": through["throughput_per_s"],
            "switch_histogram_ms": {"p50": ms(0.5), "p99": ms(0.99), "p99_9": ms(0.999)},
            "switch_histogram_count": delta[-1][1] if delta else 0,
            "client_through_switch_ms": {k: lat_b[f"{k}_ms"] for k in ("p50", "p99", "p999")},
            "client_direct_ms": {k: lat_a[f"{k}_ms"] for k in ("p50", "p99", "p999")},
            "client_added_ms": {
                k: round(lat_b[f"{k}_ms"] - lat_a[f"{k}_ms"], 3) for k in ("p50", "p99", "p999")
            },
            "timeouts": through["timeouts"],
            "errors": through["errors"],
            "machine": h.machine(),
        }
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
