"""The collector-quieting task freezes long-lived objects and gives them back."""

from __future__ import annotations

import functools
import gc
import weakref
from collections.abc import Sequence
from typing import Any

import trio
from forecourt.switch.gc_quiet import CollectionTimer, keep_gc_quiet
from forecourt.switch.metrics import SwitchMetrics
from structlog.testing import capture_logs


def _in_a_generation(objects: Sequence[object]) -> bool:
    """Whether any of `objects` is still in a collected generation, i.e. not frozen.
    (Not by the freeze count: frozen objects that die meanwhile lower it, which made
    these tests flaky after other tests.)"""
    tracked = {id(o) for o in gc.get_objects()}
    return any(id(o) in tracked for o in objects)


async def test_freezes_after_bursts_sweeps_and_unfreezes_on_exit() -> None:
    connections = [0]
    gc.unfreeze()
    async with trio.open_nursery() as nursery:
        await nursery.start(
            functools.partial(
                keep_gc_quiet, lambda: connections[0], sweep_s=0.2, burst=3, check_s=0.02
            )
        )
        assert gc.get_freeze_count() > 0  # everything alive at start is frozen
        kept = [object() for _ in range(10)] + [[i] for i in range(1000)]
        connections[0] = 5  # a burst of accepts
        with trio.fail_after(10):  # the new long-lived lists are frozen
            while _in_a_generation(kept[10:]):
                await trio.sleep(0.02)
        await trio.sleep(0.3)  # a sweep: unfreeze, collect, freeze again
        assert gc.get_freeze_count() > 0
        nursery.cancel_scope.cancel()
    assert gc.get_freeze_count() == 0
    assert len(kept) == 1010


async def test_survivors_of_a_check_interval_are_frozen_without_a_burst() -> None:
    gc.unfreeze()
    async with trio.open_nursery() as nursery:
        await nursery.start(
            functools.partial(keep_gc_quiet, lambda: 0, sweep_s=60, burst=1000, check_s=0.02)
        )
        kept = [[i] for i in range(5000)]  # long-lived, no new connection at all
        with trio.fail_after(10):  # frozen by the checks alone
            while _in_a_generation(kept):
                await trio.sleep(0.02)
        nursery.cancel_scope.cancel()
    assert gc.get_freeze_count() == 0
    assert len(kept) == 5000


def test_collections_are_timed_and_long_ones_logged() -> None:
    metrics = SwitchMetrics()
    seen: list[tuple[int, float]] = []

    def observe(generation: int, seconds: float) -> None:
        seen.append((generation, seconds))
        metrics.gc_pause(generation, seconds)

    timer = CollectionTimer(observe, warn_s=0.0)  # every collection is "long" here
    gc.callbacks.append(timer)
    try:
        with capture_logs() as logs:
            gc.collect(1)
            gc.collect()
    finally:
        gc.callbacks.remove(timer)
    assert [g for g, _ in seen][-2:] == [1, 2]
    assert all(s >= 0 for _, s in seen)
    assert [e["generation"] for e in logs if e["event"] == "gc_pause"][-2:] == [1, 2]
    text = metrics.render().decode()
    assert 'forecourt_gc_pause_seconds_count{generation="2"}' in text


class _Cycle:
    def __init__(self) -> None:
        self.me = self


async def test_sweeps_that_find_nothing_come_less_often_until_one_finds_garbage() -> None:
    gc.unfreeze()
    gc.collect()
    gc.disable()  # only the sweep collects here, so the garbage below waits for it

    def sweeps(logs: list[dict[str, Any]]) -> list[tuple[int, float]]:
        return [(e["collected"], e["next_s"]) for e in logs if e["event"] == "gc_sweep"]

    try:
        with capture_logs() as logs:
            async with trio.open_nursery() as nursery:
                await nursery.start(
                    functools.partial(
                        keep_gc_quiet,
                        lambda: 0,
                        sweep_s=0.04,
                        sweep_max_s=0.16,
                        quiet_below=500,
                        check_s=0.01,
                    )
                )
                with trio.fail_after(20):
                    while len(sweeps(logs)) < 3:  # quiet sweeps
                        await trio.sleep(0.01)
                    # cycles that live through a check are frozen; dropped after, they
                    # are garbage only a sweep (a full collection of all) can free
                    cycles = [_Cycle() for _ in range(2000)]
                    # frozen: in no generation any more. (Not by the freeze count: frozen
                    # objects that die meanwhile lower it, and that made this flaky.)
                    while _in_a_generation(cycles):
                        await trio.sleep(0.01)
                    quiet = len(sweeps(logs))
                    del cycles
                    while len(sweeps(logs)) < quiet + 2:
                        await trio.sleep(0.01)
                nursery.cancel_scope.cancel()
    finally:
        gc.enable()
    seen = sweeps(logs)
    assert [n for _, n in seen[:3]] == [0.08, 0.16, 0.16]  # doubled, held at the maximum
    found = [i for i, (collected, _) in enumerate(seen) if collected >= 2000]
    assert found, seen
    assert seen[found[0]][1] == 0.04  # garbage found: back to the base interval


async def test_young_cycles_die_at_the_check_instead_of_being_frozen() -> None:
    """The switch's gen-0 threshold is high, so the check must collect before it freezes."""
    gc.unfreeze()
    gc.collect()
    default = gc.get_threshold()
    freed: list[int] = []
    async with trio.open_nursery() as nursery:
        await nursery.start(
            functools.partial(
                keep_gc_quiet, lambda: 0, sweep_s=3600, check_s=0.05, young_threshold=1_000_000
            )
        )
        assert gc.get_threshold()[0] == 1_000_000
        kept = _Cycle()
        for i in range(500):
            cycle = _Cycle()
            weakref.finalize(cycle, freed.append, i)
            del cycle  # a cycle: only the collector can free it
        with trio.fail_after(10):
            while len(freed) < 500:
                await trio.sleep(0.01)
        assert gc.is_tracked(kept)
        nursery.cancel_scope.cancel()
    assert gc.get_threshold() == default  # handed back on exit
    assert sorted(freed) == list(range(500))
