"""Load generator: many terminals, each with its own connection, STANs and keys.

It must outrun the switch, so its per-request path does no ISO 8583 encoding
(`load_frames`: templates encoded once and patched, answers scanned for 11 and
39). Closed loop (`concurrency`: a fixed number of requests outstanding) or
open loop (`rate`: requests per second on a schedule, latency measured from
the scheduled time so a stalled switch cannot hide its stall). This module is
the run loop over the terminal pool (`load_terminal`); the options and mix
are in `load_options`, the report in `load_report`, and several worker
processes sharing one run in `load_processes`.
"""

from __future__ import annotations

import math
import random
import signal
import time
from collections.abc import Callable

import trio

from .load_options import MIX_TEMPLATES, TEST_PAN, LoadOptions, MixEntry, load_mix
from .load_report import LoadResult
from .load_terminal import LoadTerminal

__all__ = [
    "MIX_TEMPLATES",
    "TEST_PAN",
    "LoadOptions",
    "LoadResult",
    "MixEntry",
    "load_mix",
    "run_load",
    "run_load_until_signal",
]


async def run_load(
    options: LoadOptions,
    *,
    progress: Callable[[LoadResult, float], None] | None = None,
    stop: trio.Event | None = None,
) -> LoadResult:
    """Drive the load for `duration_s`, or until `stop` is set (the counts so far:
    `result.interrupted`); returns counts and latencies."""
    result = LoadResult()
    rng = random.Random(options.seed)
    ids = options.terminal_ids()
    n = len(ids)
    interval: float | None = None
    slots = 1
    if options.rate is not None:
        interval = n / options.rate if options.rate > 0 else math.inf
    else:
        concurrency = options.concurrency or n
        slots = max(1, math.ceil(concurrency / n))
    terminals = [LoadTerminal(tid, options, result, random.Random(rng.random())) for tid in ids]
    started = time.perf_counter()
    deadline = trio.current_time() + options.duration_s
    async with trio.open_nursery() as nursery:
        if progress is not None:
            nursery.start_soon(_report, progress, result, started)
        with trio.CancelScope() as driving:
            if stop is not None:
                nursery.start_soon(_stop_when, stop, driving, result)
            async with trio.open_nursery() as drivers:
                for terminal in terminals:
                    drivers.start_soon(terminal.run, deadline, slots, interval)
        nursery.cancel_scope.cancel()
    result.duration_s = min(time.perf_counter() - started, options.duration_s) or 1e-9
    return result


async def _stop_when(stop: trio.Event, drivers: trio.CancelScope, result: LoadResult) -> None:
    await stop.wait()
    result.interrupted = True
    drivers.cancel()


async def run_load_until_signal(
    options: LoadOptions, progress: Callable[[LoadResult, float], None] | None = None
) -> LoadResult:
    """`run_load`, ended early by SIGINT (Ctrl-C) or SIGTERM with the counts so far."""
    stop = trio.Event()
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:

            async def watch() -> None:
                async for _ in signals:
                    stop.set()

            nursery.start_soon(watch)
            result = await run_load(options, progress=progress, stop=stop)
            nursery.cancel_scope.cancel()
    return result


async def _report(
    progress: Callable[[LoadResult, float], None], result: LoadResult, started: float
) -> None:
    while True:
        await trio.sleep(0.25)
        progress(result, time.perf_counter() - started)
