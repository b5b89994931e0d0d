"""How hard the load generator can push: load generator -> acquirer simulator, no switch.

This is the "direct" figure the switch benchmark compares against (the switch
must reach >= 0.8 of it). Runs the host simulator in its own process and the
load generator with 1..N processes, and prints one JSON line per run.

    .venv/bin/python bench/loadgen_bench.py --duration 10 --terminals 50 --concurrency 200
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FORECOURT = [sys.executable, "-m", "forecourt.switch.cli"]

HOST_CONFIG = """
[listen]
host = "127.0.0.1"
port = {port}
dialect = "{dialect}"
framing = "2b"
[record]
keep = 10000
"""


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of a process, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--terminals", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--dialect", default="ifsf")
    parser.add_argument("--port", type=int, default=9391)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "host.toml"
        config.write_text(HOST_CONFIG.format(port=args.port, dialect=args.dialect))
        host = subprocess.Popen(
            [*FORECOURT, "sim", "acquirer", "--config", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=ROOT,
        )
        try:
            time.sleep(1.5)
            for processes in args.processes:
                report = Path(tmp) / f"load-{processes}.json"
                host_cpu = _cpu_seconds(host.pid)
                before = resource.getrusage(resource.RUSAGE_CHILDREN)
                subprocess.run(
                    [
                        *FORECOURT,
                        "sim",
                        "load",
                        "--switch",
                        f"127.0.0.1:{args.port}",
                        "--terminals",
                        str(args.terminals),
                        "--concurrency",
                        str(args.concurrency),
                        "--duration",
                        str(args.duration),
                        "--dialect",
                        args.dialect,
                        "--processes",
                        str(processes),
                        "--quiet",
                        "--json",
                        str(report),
                    ],
                    check=True,
                    stdout=subprocess.DEVNULL,
                    cwd=ROOT,
                )
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                load_cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
                host_cpu = _cpu_seconds(host.pid) - host_cpu
                data = json.loads(report.read_text())
                answered = max(1, data["answered"])
                print(
                    json.dumps(
                        {
                            "processes": processes,
                            "cpus": os.cpu_count(),
                            "throughput_per_s": data["throughput_per_s"],
                            "latency_ms": data["latency_ms"],
                            "timeouts": data["timeouts"],
                            "errors": data["errors"],
                            # CPU cost per request: what each side could do with a core of its own.
                            "loadgen_us_per_request": round(load_cpu / answered * 1e6, 1),
                            "host_us_per_request": round(host_cpu / answered * 1e6, 1),
                        }
                    )
                )
        finally:
            host.terminate()
            host.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
