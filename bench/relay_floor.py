"""What a trio relay costs before any payment work: the floor under benchmarks 1 and 3.

In one run, alternating (``--rounds`` times) the same closed-loop load of purchases:

- A: straight to the acquirer simulator (as in benchmark 1);
- callback, task, codec, journal: through ``bench/_null_relay.py`` in that mode
  (no routing, no state; only ``journal`` writes a journal; see its docstring);
- B: through the switch (MAC both legs, durable journal), as in benchmark 1.

For each: throughput, the ratio to A, p50/p99, and the middle process's CPU per
answered request (user+sys from /proc/PID/stat). The gap between ``callback`` and
``task`` is what a task and two wake-ups per request cost; between ``task`` and
``codec`` the codec and MACs; between ``codec`` and ``journal`` two durable
journal writes a transaction; between ``journal`` and B the switch's own logic
(routing, matching, duplicate window, parked reversal, records, metrics).

    .venv/bin/python bench/relay_floor.py --duration 8 --rounds 2
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

import _harness as h

MODES = ("callback", "task", "codec", "journal")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per run")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--terminals", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=200)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="fc-bench-") as tmp:
        work = Path(tmp)
        data_dir = work / "data"
        zak = h.prepare_keys(data_dir, h.terminal_ids(args.terminals))
        acquirer, acquirer_port = h.start_acquirer(work, zak)
        with h.stopping(acquirer):
            switch, switch_port, _ = h.start_switch(
                work, data_dir, acquirer_port, max_in_flight=max(8, args.concurrency // 50)
            )
            with h.stopping(switch):
                runs = _rounds(args, work, zak, acquirer_port, switch, switch_port)
    a = statistics.mean(r["throughput_per_s"] for r in runs["A"])
    summary: dict[str, object] = {}
    for side, results in runs.items():
        tput = statistics.mean(r["throughput_per_s"] for r in results)
        cpu = [r["middle_us_per_request"] for r in results if r["middle_us_per_request"]]
        summary[side] = {
            "throughput_per_s": round(tput, 1),
            "ratio_to_A": round(tput / a, 3),
            "p50_ms": round(statistics.mean(r["p50_ms"] for r in results), 2),
            "p99_ms": round(statistics.mean(r["p99_ms"] for r in results), 2),
            "middle_us_per_request": round(statistics.mean(cpu), 1) if cpu else None,
            "middle_share_of_core": round(
                statistics.mean(r["middle_share_of_core"] for r in results), 2
            ),
            "errors": sum(r["errors"] + r["timeouts"] for r in results),
        }
    h.emit(
        {
            "benchmark": "relay_floor",
            "duration_s": args.duration,
            "rounds": args.rounds,
            "terminals": args.terminals,
            "concurrency": args.concurrency,
            "results": summary,
            "runs": runs,
            "machine": h.machine(),
        }
    )
    return 0


def _rounds(
    args: argparse.Namespace,
    work: Path,
    zak: bytes,
    acquirer_port: int,
    switch: h.Proc,
    switch_port: int,
) -> dict[str, list[dict[str, float]]]:
    direct_mac = {"mac": "key", "mac-key": zak.hex()}
    switch_mac = {"mac": "store", "data-dir": str(work / "data")}
    common = {"terminals": args.terminals, "concurrency": args.concurrency}
    h.run_load(work, acquirer_port, duration=2, mac=direct_mac, tag="warm-a", **common)
    h.run_load(work, switch_port, duration=2, mac=switch_mac, tag="warm-b", **common)
    runs: dict[str, list[dict[str, float]]] = {side: [] for side in ("A", *MODES, "B")}
    for i in range(args.rounds):
        for side in runs:
            if side == "A":
                data, cpu = _load(work, acquirer_port, None, direct_mac, f"A{i}", args)
            elif side == "B":
                data, cpu = _load(work, switch_port, switch, switch_mac, f"B{i}", args)
            else:
                port = h.free_port()
                relay = h.Proc(
                    side,
                    [
                        sys.executable,
                        str(Path(__file__).with_name("_null_relay.py")),
                        side,
                        str(port),
                        str(acquirer_port),
                        zak.hex(),
                        str(work / f"relay-{side}-{i}.db"),
                    ],
                    work / f"relay-{side}.log",
                )
                with h.stopping(relay):
                    h.wait_port(port)
                    data, cpu = _load(work, port, relay, direct_mac, f"{side}{i}", args)
            answered = int(data["answered"])
            runs[side].append(
                {
                    "throughput_per_s": float(data["throughput_per_s"]),
                    "p50_ms": float(data["latency_ms"]["p50_ms"]),
                    "p99_ms": float(data["latency_ms"]["p99_ms"]),
                    "answered": answered,
                    "errors": int(data["errors"]),
                    "timeouts": int(data["timeouts"]),
                    "middle_us_per_request": round(cpu / answered * 1e6, 1) if answered else 0.0,
                    "middle_share_of_core": round(cpu / args.duration, 3),
                }
            )
    return runs


def _load(
    work: Path,
    port: int,
    middle: h.Proc | None,
    mac: dict[str, str],
    tag: str,
    args: argparse.Namespace,
) -> tuple[dict[str, object], float]:
    before = middle.cpu() if middle is not None else 0.0
    data = h.run_load(
        work,
        port,
        duration=args.duration,
        mac=mac,
        tag=tag,
        terminals=args.terminals,
        concurrency=args.concurrency,
    )
    after = middle.cpu() if middle is not None else 0.0
    return data, after - before


if __name__ == "__main__":
    sys.exit(main())
