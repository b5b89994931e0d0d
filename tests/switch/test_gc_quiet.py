"""The collector-quieting task freezes long-lived objects and gives them back."""

from __future__ import annotations

import gc

import trio
from forecourt.switch.gc_quiet import keep_gc_quiet


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
