"""Benchmark 5: 10,000 idle terminal connections, each sending an echo every 30 s.

The switch gets a second listener (``idle``) whose terminal group lists the idle
terminals' ids (``E0000001``...) with ``mac_required = false`` (network management
is not MAC'd), and ``max_connections`` above the count. Live traffic (MAC'd
purchases from ``forecourt sim load``, open loop at ``--rate``) goes to the first
listener, as in the other benchmarks.

1. live traffic alone for ``--duration`` seconds: the client's p99 and the switch's
   own latency histogram (``forecourt_switch_latency_seconds``);
2. ``--connections`` sockets to 127.0.0.1 opened and held by a small trio client in
   this process; each sends a 1804 echo (24 = 831) every ``--echo-interval`` seconds
   as it connects (a connection with no accepted frame is closed after the
   listener's ``first_frame_timeout_s``), the next at a random point of the first
   interval, then every interval ±10 %, and reads its 1814;
3. the same live traffic again, with the idle connections and their echoes.

Reports the switch's RSS (VmRSS of /proc/PID/status) before and after the
connections, the live p99 without and with them and their ratio (target: within
20 %, RSS ≤ 300 MB), and the echoes sent / answered / their latency. RLIMIT_NOFILE
is raised in every process. Prints one JSON object.

    .venv/bin/python bench/switch_connections.py --connections 10000 --duration 40
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path
from typing import Any

import _harness as h
import trio

NAME = "forecourt_switch_latency_seconds"


class IdleFleet:
    """Many idle terminals, one socket and one task each; an echo now and then."""

    def __init__(self, port: int, count: int, interval: float, seed: int = 5) -> None:
        from forecourt.simulators.wire import wire_format

        self.port = port
        self.count = count
        self.interval = interval
        self.wire = wire_format("ifsf", "binary", "2b")
        self.rng = random.Random(seed)
        self.connected = 0
        self.connect_failed = 0
        self.sent = 0
        self.answered = 0
        self.accepted = 0  # answered 800
        self.errors = 0
        self.closed = 0
        self.latencies: list[float] = []
        self.all_connected = trio.Event()

    def _echo(self, terminal_id: str, stan: int) -> bytes:
        from forecourt.codecs.dialect import encode
        from forecourt.codecs.framing import encode_frame
        from forecourt.codecs.network import NetworkFunction, network_request

        message = network_request("1993", NetworkFunction.ECHO, f"{stan:06d}", terminal_id)
        return encode_frame(self.wire.framing, encode(self.wire.dialect, message), None)

    async def run(self) -> None:
        limiter = trio.CapacityLimiter(200)
        self._settled()  # --connections 0: the second live run is a control
        async with trio.open_nursery() as nursery:
            for i in range(self.count):
                nursery.start_soon(self._terminal, f"E{i + 1:07d}", limiter)

    def _settled(self) -> None:
        if self.connected + self.connect_failed >= self.count:
            self.all_connected.set()

    async def _terminal(self, terminal_id: str, limiter: trio.CapacityLimiter) -> None:
        from forecourt.codecs.dialect import decode
        from forecourt.codecs.framing import FrameDecoder

        async with limiter:
            try:
                stream = await trio.open_tcp_stream("127.0.0.1", self.port)
            except OSError:
                self.connect_failed += 1
                self._settled()
                return
        self.connected += 1
        self._settled()
        decoder = FrameDecoder(self.wire.framing)
        stan = self.rng.randrange(1, 900_000)
        # the first echo at once: the switch closes a connection that has no frame
        # accepted within first_frame_timeout_s; then a random phase, then the interval
        pause = self.rng.uniform(0, self.interval)
        try:
            while True:
                stan = stan % 999_999 + 1
                frame = self._echo(terminal_id, stan)
                started = time.perf_counter()
                await stream.send_all(frame)
                self.sent += 1
                frames: list[Any] = []
                with trio.move_on_after(10.0):
                    while not frames:
                        data = await stream.receive_some(4096)
                        if not data:
                            self.closed += 1
                            return
                        frames = decoder.feed(data)
                if not frames:
                    self.errors += 1
                else:
                    self.latencies.append(time.perf_counter() - started)
                    self.answered += 1
                    if decode(self.wire.dialect, frames[0].payload).fields.get("39") == "800":
                        self.accepted += 1
                await trio.sleep(pause)
                pause = self.interval * self.rng.uniform(0.9, 1.1)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            self.errors += 1
        finally:
            with trio.CancelScope(shield=True):
                await stream.aclose()


def _idle_toml(port: int, count: int) -> str:
    ids = ", ".join(f'"E{i + 1:07d}"' for i in range(count))
    return f"""
[[listeners]]
name = "idle"
host = "127.0.0.1"
port = {port}
dialect = "ifsf"
max_connections = {count + 100}
idle_timeout_s = 600.0
terminal_group = "idle"
[[terminal_groups]]
name = "idle"
terminals = [{ids}]
mac_required = false
max_in_flight = 4
"""


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 3)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=10_000)
    parser.add_argument("--echo-interval", type=float, default=30.0)
    parser.add_argument("--duration", type=float, default=40.0, help="seconds per live run")
    parser.add_argument("--rate", type=float, default=300.0, help="live purchases a second")
    parser.add_argument("--terminals", type=int, default=50, help="live terminals")
    args = parser.parse_args()
    h.raise_nofile()
    with h.acquirer_rig(args.terminals) as rig:
        work, data_dir, acquirer_port = rig.work, rig.data_dir, rig.acquirer_port
        idle_port = h.free_port()
        switch, port, metrics = h.start_switch(
            work,
            data_dir,
            acquirer_port,
            extra_toml=_idle_toml(idle_port, args.connections),
        )
        with h.stopping(switch):
            result = trio.run(_phases, args, work, data_dir, switch, port, idle_port, metrics)
    result["machine"] = h.machine()
    h.emit(result)
    return 0


async def _phases(
    args: argparse.Namespace,
    work: Path,
    data_dir: Path,
    switch: h.Proc,
    port: int,
    idle_port: int,
    metrics: int,
) -> dict[str, Any]:
    mac = {"mac": "store", "data-dir": str(data_dir)}

    async def live(tag: str) -> dict[str, Any]:
        before = h.histogram(await trio.to_thread.run_sync(h.scrape, metrics), NAME)[0]
        cpu0 = switch.cpu()
        data = await trio.to_thread.run_sync(
            lambda: h.run_load(
                work,
                port,
                terminals=args.terminals,
                rate=args.rate,
                duration=args.duration,
                mac=mac,
                tag=tag,
            )
        )
        cpu = switch.cpu() - cpu0
        after = h.histogram(await trio.to_thread.run_sync(h.scrape, metrics), NAME)[0]
        delta = h.histogram_delta(after, before)
        lat = data["latency_ms"]

        def ms(q: float) -> float | None:
            v = h.quantile(delta, q)
            return None if v is None else round(v * 1000, 3)

        return {
            "achieved_per_s": data["throughput_per_s"],
            "client_ms": {k: lat[f"{k}_ms"] for k in ("p50", "p99", "p999")},
            "switch_histogram_ms": {"p50": ms(0.5), "p99": ms(0.99)},
            "timeouts": data["timeouts"],
            "errors": data["errors"],
            "by_action_code": data["by_action_code"],
            "switch_cpu_share_of_core": round(cpu / args.duration, 2),
        }

    # warm-up, then live traffic alone
    await trio.to_thread.run_sync(
        lambda: h.run_load(
            work, port, terminals=args.terminals, rate=args.rate, duration=3, mac=mac, tag="warm"
        )
    )
    rss_before = switch.rss_mb()
    alone = await live("alone")
    rss_after_alone = switch.rss_mb()
    fleet = IdleFleet(idle_port, args.connections, args.echo_interval)
    async with trio.open_nursery() as nursery:
        started = time.perf_counter()
        nursery.start_soon(fleet.run)
        await fleet.all_connected.wait()
        connect_s = time.perf_counter() - started
        # let the first round of echoes start before measuring
        await trio.sleep(5.0)
        text = await trio.to_thread.run_sync(h.scrape, metrics)
        prefix = 'forecourt_connections{listener="idle"'
        gauge = [line for line in text.splitlines() if line.startswith(prefix)]
        rss_idle = switch.rss_mb()
        bench_cpu0 = time.process_time()
        with_idle = await live("with_idle")
        bench_cpu = time.process_time() - bench_cpu0
        rss_end = switch.rss_mb()
        nursery.cancel_scope.cancel()
    p99_alone = alone["client_ms"]["p99"]
    p99_idle = with_idle["client_ms"]["p99"]
    ratio = round(p99_idle / p99_alone, 3) if p99_alone else None
    return {
        "benchmark": "connections",
        "connections": args.connections,
        "connected": fleet.connected,
        "connect_failed": fleet.connect_failed,
        "connect_s": round(connect_s, 2),
        "switch_idle_gauge": gauge[0].split()[-1] if gauge else None,
        "echo_interval_s": args.echo_interval,
        "echoes": {
            "sent": fleet.sent,
            "answered": fleet.answered,
            "accepted_800": fleet.accepted,
            "no_answer_or_error": fleet.errors,
            "closed_by_switch": fleet.closed,
            "p50_ms": _percentile(fleet.latencies, 0.5),
            "p99_ms": _percentile(fleet.latencies, 0.99),
        },
        "live_rate_per_s": args.rate,
        "live_duration_s": args.duration,
        "live_alone": alone,
        "live_with_idle": with_idle,
        "p99_ratio_with_over_alone": ratio,
        "switch_rss_mb": {
            "before": rss_before,
            "after_live_alone": rss_after_alone,
            "with_idle_connections": rss_idle,
            "end": rss_end,
        },
        "bench_client_cpu_share_during_live": round(bench_cpu / args.duration, 2),
        "targets": {
            "p99_within_20pct": None if ratio is None else ratio <= 1.2,
            "rss_le_300mb": rss_end <= 300,
        },
    }


if __name__ == "__main__":
    sys.exit(main())
