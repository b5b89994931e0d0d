"""Keep Python's cyclic garbage collector from stalling the event loop.

A switch holding thousands of terminal sessions keeps hundreds of thousands of
long-lived objects; each full collection walks them all and stops every request
for the better part of a second (measured: 0.4-0.9 s with 10,000 idle sessions).
Long-lived objects are moved out of the collector's view with `gc.freeze()` once the
switch is up and then every `check_s`: full collections otherwise kept walking the
duplicate window and the parked reversals, finding nothing to free (measured at 600/s:
a full collection every 5-8 s, up to 164 ms, after 4 minutes; docs/performance.md).
Every `sweep_s` everything is handed back for one full collection (reclaiming cycles
that became garbage after being frozen, such as sessions that closed) and frozen
again. One pause per sweep instead of one every few seconds.

The sweep's pause grows with what is frozen (95, 147, 212 ms at 100k, 128k, 156k
objects), while at steady traffic it finds next to nothing (0-122 objects a sweep,
docs/performance.md). So a sweep that frees fewer than `quiet_below` objects doubles
the wait before the next, up to `sweep_max_s`; one that frees more brings it back to
`sweep_s`: terminals that come and go keep being swept every `sweep_s`.

Generation 0 at CPython's default threshold (700 net allocations) ran about ten times
a second at 500/s, ~1.2 ms each, walking mostly the coroutines of requests in flight
(docs/performance.md, fourth and fifth rounds). While this task runs the threshold is
`young_threshold` instead, and each check collects generations 0 and 1 just before it
freezes: young cycles die there, within `check_s`, instead of being frozen until a
sweep. A freeze resets the allocation count, so at steady traffic that check is the
only young collection.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable

import structlog
import trio

log = structlog.get_logger("forecourt.gc")


class CollectionTimer:
    """Times every collection (``gc.callbacks``): the pauses it puts on the event loop.

    ``observe(generation, seconds)`` is told each one; a pause of ``warn_s`` or more is
    also logged, since every request in flight waited that long.
    """

    def __init__(self, observe: Callable[[int, float], None], warn_s: float = 0.1) -> None:
        self._observe = observe
        self._warn_s = warn_s
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        seconds = time.perf_counter() - self._started
        generation = info.get("generation", 2)
        self._observe(generation, seconds)
        if seconds >= self._warn_s:
            log.warning(
                "gc_pause",
                generation=generation,
                ms=round(seconds * 1000, 1),
                collected=info.get("collected"),
            )


async def keep_gc_quiet(
    connections: Callable[[], int],
    *,
    sweep_s: float = 600.0,
    sweep_max_s: float = 4 * 3600.0,
    quiet_below: int = 10_000,
    burst: int = 500,
    check_s: float = 5.0,
    young_threshold: int = 10_000,
    observe: Callable[[int, float], None] | None = None,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    timer = CollectionTimer(observe) if observe is not None else None
    if timer is not None:
        gc.callbacks.append(timer)
    thresholds = gc.get_threshold()
    if young_threshold > 0:
        gc.set_threshold(young_threshold, *thresholds[1:])
    gc.collect(1)
    gc.freeze()
    frozen_at = connections()
    task_status.started()
    since_sweep = 0.0
    try:
        await _watch(
            connections,
            _SweepPlan(sweep_s, max(sweep_s, sweep_max_s), quiet_below),
            burst,
            check_s,
            frozen_at,
            since_sweep,
        )
    finally:
        gc.unfreeze()  # whatever runs in this process after the switch gets its collector back
        gc.set_threshold(*thresholds)
        if timer is not None:
            gc.callbacks.remove(timer)


class _SweepPlan:
    """When the next sweep is due: later while sweeps find nothing, back when one does."""

    def __init__(self, every_s: float, max_s: float, quiet_below: int) -> None:
        self.every_s = every_s
        self.max_s = max_s
        self.quiet_below = quiet_below
        self.next_s = every_s

    def swept(self, collected: int) -> float:
        if collected < self.quiet_below:
            self.next_s = min(self.next_s * 2, self.max_s)
        else:
            self.next_s = self.every_s
        return self.next_s


async def _watch(
    connections: Callable[[], int],
    plan: _SweepPlan,
    burst: int,
    check_s: float,
    frozen_at: int,
    since_sweep: float,
) -> None:
    while True:
        await trio.sleep(check_s)
        since_sweep += check_s
        now = connections()
        if since_sweep >= plan.next_s:
            gc.unfreeze()
            started = time.perf_counter()
            collected = gc.collect()
            gc.freeze()
            since_sweep, frozen_at = 0.0, now
            log.info(
                "gc_sweep",
                collected=collected,
                frozen=gc.get_freeze_count(),
                ms=round((time.perf_counter() - started) * 1000, 1),
                next_s=plan.swept(collected),
            )
            continue
        # Whatever has lived through a check interval is long-lived (the duplicate
        # window, parked reversals, sessions): out of the collector's view with it.
        # Freezing is a list splice, whatever the count; full collections then walk
        # only what is younger than one interval. Young cycles are collected first,
        # so that garbage does not wait for the next sweep.
        gc.collect(1)
        gc.freeze()
        if now - frozen_at >= burst:
            frozen_at = now
            log.info("gc_freeze_after_accepts", connections=now, frozen=gc.get_freeze_count())
        elif now < frozen_at:
            frozen_at = now
