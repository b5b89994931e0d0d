"""Where the switch's CPU goes: its event loop and its journal writer, one core to itself.

Benchmark 1's B leg (MAC both legs, durable journal) with the switch pinned to CPU 0
and the acquirer simulator and load generator pinned to CPU 1, so that the switch
competes with nobody and its CPU per transaction is steadier than in benchmark 3
(where three processes share two cores). Per thread from /proc/PID/task: the event
loop (the process's main thread) and the journal writer (trio worker threads).

Closed loop (``--concurrency``, the default) measures the switch at saturation;
``--rate`` measures it at a fixed offered rate, where batches are small and the
per-batch costs (a thread hand-off and a commit per journal batch, a loop
iteration per event) are spread over fewer transactions.

    .venv/bin/python bench/switch_cpu_split.py --duration 10
    .venv/bin/python bench/switch_cpu_split.py --duration 10 --rate 300
"""

from __future__ import annotations

import argparse
import os
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import _harness as h


def thread_cpu(pid: int) -> dict[str, tuple[str, float, float]]:
    """{tid: (name, user s, sys s)} of every thread of a process."""
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[str, tuple[str, float, float]] = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            stat = Path(f"/proc/{pid}/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
            name = Path(f"/proc/{pid}/task/{tid}/comm").read_text().strip()
        except FileNotFoundError:
            continue  # a worker thread that ended
        out[tid] = (name, int(stat[11]) / tick, int(stat[12]) / tick)
    return out


def pin(pid: int, cpu: int) -> None:
    subprocess.run(
        ["taskset", "-a", "-p", "-c", str(cpu), str(pid)], check=True, stdout=subprocess.DEVNULL
    )


def pin_load_generators(cpu: int) -> None:
    found = subprocess.run(["pgrep", "-f", "sim load"], capture_output=True, text=True).stdout
    for pid in found.split():
        subprocess.run(
            ["taskset", "-a", "-p", "-c", str(cpu), pid],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--terminals", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--rate", type=float, help="open loop at this rate instead")
    args = parser.parse_args()
    if (os.cpu_count() or 1) < 2:
        raise SystemExit("needs two CPUs")

    with h.acquirer_rig(args.terminals) as rig:
        work, data_dir, acquirer_port = rig.work, rig.data_dir, rig.acquirer_port
        switch, port, _metrics = h.start_switch(
            work,
            data_dir,
            acquirer_port,
            log_level="warning",
            max_in_flight=max(8, args.concurrency // args.terminals),
        )
        with h.stopping(switch):
            pin(switch.pid, 0)
            pin(rig.acquirer_pid, 1)
            mac = {"mac": "store", "data-dir": str(data_dir)}
            h.run_load(
                work,
                port,
                terminals=args.terminals,
                duration=2,
                concurrency=args.concurrency,
                mac=mac,
                tag="warm",
            )
            result: dict[str, Any] = {}

            def load() -> None:
                result.update(
                    h.run_load(
                        work,
                        port,
                        terminals=args.terminals,
                        duration=args.duration,
                        concurrency=None if args.rate else args.concurrency,
                        rate=args.rate,
                        mac=mac,
                        tag="measured",
                    )
                )

            runner = threading.Thread(target=load)
            runner.start()
            time.sleep(0.5)
            pin_load_generators(1)
            before = thread_cpu(switch.pid)
            total_before = switch.cpu()
            started = time.perf_counter()
            runner.join()
            elapsed = time.perf_counter() - started
            after = thread_cpu(switch.pid)
            total = switch.cpu() - total_before

    answered = int(result.get("answered", 0))
    loop_user = loop_sys = writer_user = writer_sys = 0.0
    for tid, (name, user, system) in after.items():
        _, user0, sys0 = before.get(tid, (name, 0.0, 0.0))
        if name.startswith("Trio thread") or name.startswith("run_batch"):
            writer_user += user - user0
            writer_sys += system - sys0
        elif tid == str(switch.pid):
            loop_user += user - user0
            loop_sys += system - sys0

    def per_txn(seconds: float) -> float | None:
        return round(seconds / answered * 1e6, 1) if answered else None

    h.emit(
        {
            "benchmark": "cpu_split",
            "mode": f"rate {args.rate}/s" if args.rate else f"concurrency {args.concurrency}",
            "duration_s": args.duration,
            "throughput_per_s": result.get("throughput_per_s"),
            "answered": answered,
            "timeouts": result.get("timeouts"),
            "errors": result.get("errors"),
            "switch_cpu_us_per_txn": per_txn(total),
            "event_loop_us_per_txn": {"user": per_txn(loop_user), "sys": per_txn(loop_sys)},
            "journal_writer_us_per_txn": {"user": per_txn(writer_user), "sys": per_txn(writer_sys)},
            "switch_cpu_share_of_core": round(total / elapsed, 3),
            "machine": h.machine(),
        }
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
