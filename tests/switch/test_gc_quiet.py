"""The collector-quieting task freezes long-lived objects and gives them back."""

from __future__ import annotations

import gc

import trio
from forecourt.switch.gc_quiet import CollectionTimer, keep_gc_quiet
from forecourt.switch.metrics import SwitchMetrics
from structlog.testing import capture_logs


async def test_freezes_after_bursts_sweeps_and_unfreezes_on_exit() -> None:
    connections = [0]
    gc.unfreeze()
    async with trio.open_nursery() as nursery:
        await nursery.start(
            lambda task_status: keep_gc_quiet(
                lambda: connections[0], sweep_s=0.2, burst=3, check_s=0.02, task_status=task_status
            )
        )
        assert gc.get_freeze_count() > 0  # everything alive at start is frozen
        kept = [object() for _ in range(10)] + [[i] for i in range(1000)]
        before = gc.get_freeze_count()
        connections[0] = 5  # a burst of accepts
        await trio.sleep(0.1)
        assert gc.get_freeze_count() >= before + 1000  # the new long-lived lists are frozen
        await trio.sleep(0.3)  # a sweep: unfreeze, collect, freeze again
        assert gc.get_freeze_count() > 0
        nursery.cancel_scope.cancel()
    assert gc.get_freeze_count() == 0
    assert len(kept) == 1010


async def test_survivors_of_a_check_interval_are_frozen_without_a_burst() -> None:
    gc.unfreeze()
    async with trio.open_nursery() as nursery:
        await nursery.start(
            lambda task_status: keep_gc_quiet(
                lambda: 0, sweep_s=60, burst=1000, check_s=0.02, task_status=task_status
            )
        )
        before = gc.get_freeze_count()
        kept = [[i] for i in range(5000)]  # long-lived, no new connection at all
        await trio.sleep(0.1)
        assert gc.get_freeze_count() >= before + 5000
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
