"""One load run spread over worker processes, their results merged.

Each worker gets a picklable spec of its share (terminals, rate, concurrency,
seed) and rebuilds its MAC keys itself; the parent polls shared counters for
progress and merges the workers' histograms into one `LoadResult`.
"""

from __future__ import annotations

import json
import multiprocessing
import multiprocessing.connection
import os
import signal
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import attrs
import trio

from .load import run_load_until_signal
from .load_options import LoadOptions, MixEntry
from .load_report import LoadResult
from .wire import wire_format

__all__ = ["options_from_spec", "options_to_spec", "run_load_processes"]


def _share(options: LoadOptions, index: int, processes: int) -> LoadOptions:
    """Process `index`'s slice of terminals, rate and concurrency."""
    per = options.terminals // processes + (1 if index < options.terminals % processes else 0)
    first = options.first_terminal + sum(
        options.terminals // processes + (1 if i < options.terminals % processes else 0)
        for i in range(index)
    )
    rate = None if options.rate is None else options.rate * per / options.terminals
    concurrency = None
    if options.concurrency is not None:
        concurrency = max(1, round(options.concurrency * per / options.terminals))
    seed = None if options.seed is None else options.seed + index
    return attrs.evolve(
        options,
        terminals=per,
        first_terminal=first,
        rate=rate,
        concurrency=concurrency,
        seed=seed,
        macs=None,
    )


def _worker(
    spec: dict[str, Any], conn: multiprocessing.connection.Connection, counters: Any, index: int
) -> None:
    options = options_from_spec(spec)

    def progress(result: LoadResult, _: float) -> None:
        counters[index * 3] = result.sent
        counters[index * 3 + 1] = result.answered
        counters[index * 3 + 2] = result.latency.percentile_ms(99.0)

    result = trio.run(lambda: run_load_until_signal(options, progress=progress))
    conn.send(json.dumps(result.wire_form()))
    conn.close()


def options_to_spec(options: LoadOptions, mac_spec: Mapping[str, Any] | None) -> dict[str, Any]:
    """A picklable description of the options (a worker rebuilds keys from mac_spec)."""
    wire = options.wire
    return {
        "host": options.host,
        "port": options.port,
        "dialect": wire.dialect.name,
        "bitmap": wire.dialect.bitmap,
        "header": wire.framing.header,
        "tpdu": wire.tpdu.hex() if wire.tpdu else None,
        "max_frame": wire.framing.max_frame,
        "terminals": options.terminals,
        "first_terminal": options.first_terminal,
        "duration_s": options.duration_s,
        "rate": options.rate,
        "concurrency": options.concurrency,
        "mix": [attrs.asdict(m) for m in options.mix],
        "timeout_s": options.timeout_s,
        "terminal_prefix": options.terminal_prefix,
        "merchant_id": options.merchant_id,
        "seed": options.seed,
        "reconnect": options.reconnect,
        "mac": dict(mac_spec) if mac_spec else None,
    }


def options_from_spec(spec: Mapping[str, Any]) -> LoadOptions:
    tpdu = bytes.fromhex(spec["tpdu"]) if spec["tpdu"] else False
    wire = wire_format(spec["dialect"], spec["bitmap"], spec["header"], tpdu, spec["max_frame"])
    options = LoadOptions(
        host=spec["host"],
        port=spec["port"],
        wire=wire,
        terminals=spec["terminals"],
        first_terminal=spec["first_terminal"],
        duration_s=spec["duration_s"],
        rate=spec["rate"],
        concurrency=spec["concurrency"],
        mix=tuple(
            MixEntry(m["template"], m["weight"], tuple(m["pans"]), m["amount_min"], m["amount_max"])
            for m in spec["mix"]
        ),
        timeout_s=spec["timeout_s"],
        terminal_prefix=spec["terminal_prefix"],
        merchant_id=spec["merchant_id"],
        seed=spec["seed"],
        reconnect=bool(spec.get("reconnect", False)),
    )
    if spec.get("mac"):
        from .loadkeys import macs_for

        options = attrs.evolve(options, macs=macs_for(spec["mac"], options.terminal_ids()))
    return options


def run_load_processes(
    options: LoadOptions,
    processes: int,
    mac_spec: Mapping[str, Any] | None = None,
    progress: Callable[[int, int, float, float], None] | None = None,
) -> LoadResult:
    """Run the load in `processes` worker processes and merge their results.

    `progress(sent, answered, worst p99 ms, elapsed)` is called about four times
    a second from the parent.
    """
    processes = max(1, min(processes, options.terminals))
    ctx = multiprocessing.get_context("spawn")
    counters = ctx.Array("d", 3 * processes, lock=False)
    workers = []
    for index in range(processes):
        spec = options_to_spec(_share(options, index, processes), mac_spec)
        parent, child = ctx.Pipe(duplex=False)
        process = ctx.Process(target=_worker, args=(spec, child, counters, index), daemon=True)
        process.start()
        child.close()
        workers.append((process, parent))
    started = time.perf_counter()
    merged = LoadResult()

    def forward(signum: int, _frame: object) -> None:
        """Ctrl-C or SIGTERM: each worker stops and sends what it counted so far."""
        for process, _ in workers:
            if process.pid is not None and process.is_alive():
                os.kill(process.pid, signal.SIGINT)

    main = threading.current_thread() is threading.main_thread()  # signals: main thread only
    if main:
        previous = signal.signal(signal.SIGINT, forward), signal.signal(signal.SIGTERM, forward)
    try:
        pending = {id(p): (p, c) for p, c in workers}
        while pending:
            ready = multiprocessing.connection.wait([c for _, c in pending.values()], timeout=0.25)
            for conn in ready:
                for key, (process, c) in list(pending.items()):
                    if c is conn:
                        try:
                            merged.merge(LoadResult.from_wire(json.loads(c.recv())))
                        except EOFError:
                            merged.errors += 1  # the worker died without a result
                        process.join()
                        del pending[key]
            if progress is not None:
                sent = int(sum(counters[i * 3] for i in range(processes)))
                answered = int(sum(counters[i * 3 + 1] for i in range(processes)))
                p99 = max(counters[i * 3 + 2] for i in range(processes))
                progress(sent, answered, p99, time.perf_counter() - started)
    finally:
        if main:
            signal.signal(signal.SIGINT, previous[0])
            signal.signal(signal.SIGTERM, previous[1])
        for process, _ in workers:
            if process.is_alive():
                process.terminate()
                process.join()
    return merged
