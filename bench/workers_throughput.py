"""Throughput of `forecourt serve --workers N` on this machine (N = 1, 2 by default).

    .venv/bin/python bench/workers_throughput.py [--workers 1 2] [--database sqlite|postgres]
                                               [--duration 10] [--terminals 64] [--json out.json]

Each run: the acquirer simulator, `forecourt serve --workers N` and the load
generator (`forecourt sim load`, closed loop, MACs from the key store) in separate
processes on loopback; the switch journal durable (SQLite synchronous=FULL, or a
throwaway PostgreSQL with fsync on). Prints answers per second and latency.
The load generator and the acquirer simulator share the same cores as the
switch: the figures are for the whole chain on one machine.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _nodes


def one_run(workers: int, database: str, duration: float, terminals: int) -> dict[str, Any]:
    with ExitStack() as stack:
        work = stack.enter_context(_nodes.workdir())
        dsn = stack.enter_context(_nodes.postgres()) if database == "postgres" else None
        procs = stack.enter_context(_nodes.processes())
        data_dir = work / "data"
        _nodes.provision(data_dir, dsn, terminals)
        acq_port, port, metrics = _nodes.free_port(), _nodes.free_port(), _nodes.free_port()
        acq_cfg = _nodes.acquirer_config(work / "acq.toml", acq_port, None)
        procs.append(
            _nodes.start(
                [
                    *_nodes.FORECOURT,
                    "sim",
                    "acquirer",
                    "--config",
                    str(acq_cfg),
                    "--port",
                    str(acq_port),
                ],
                work / "acquirer.log",
            )
        )
        _nodes.wait_port(acq_port)
        cfg = _nodes.node_config(
            work / "node.toml",
            node="bench",
            data_dir=data_dir,
            port=port,
            metrics_port=metrics,
            acquirer_port=acq_port,
            database=dsn,
            max_in_flight=4,
        )
        procs.append(
            _nodes.start(
                [*_nodes.FORECOURT, "serve", "--config", str(cfg), "--workers", str(workers)],
                work / "switch.log",
            )
        )
        for i in range(workers):  # worker i serves metrics on metrics + i
            _nodes.wait_healthy(metrics + i)
        out = work / "load.json"
        load = _nodes.start(
            [*_nodes.FORECOURT, "sim", "load", "--switch", f"127.0.0.1:{port}",
             "--terminals", str(terminals), "--concurrency", str(terminals * 2),
             "--duration", str(duration), "--timeout", "5", "--mac", "store",
             "--data-dir", str(data_dir), *(["--database", dsn] if dsn else []),
             "--quiet", "--json", str(out)],
            work / "load.log",
        )  # fmt: skip
        procs.append(load)
        load.wait(duration + 120)
        report: dict[str, Any] = json.loads(out.read_text())
        time.sleep(0.2)
        return report


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite")
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--terminals", type=int, default=64)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    results = {}
    for n in args.workers:
        r = one_run(n, args.database, args.duration, args.terminals)
        lat = r["latency_ms"]
        results[n] = {
            "throughput_per_s": r["throughput_per_s"],
            "answered": r["answered"],
            "p50_ms": lat.get("p50_ms"),
            "p99_ms": lat.get("p99_ms"),
            "timeouts": r["timeouts"],
            "errors": r["errors"],
            "by_action_code": r["by_action_code"],
        }
        print(
            f"{args.database} workers={n}: {r['throughput_per_s']}/s, p50 {lat.get('p50_ms')} ms, "
            f"p99 {lat.get('p99_ms')} ms, timeouts {r['timeouts']}, codes {r['by_action_code']}",
            flush=True,
        )
    if args.json:
        args.json.write_text(json.dumps({"database": args.database, "runs": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
