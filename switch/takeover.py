"""Several nodes on one journal: take over what a dead node left in flight.

A node's own crash recovery (recovery.py) only runs when that node starts again.
If it never does, its transactions stay `forwarded` — approved at the host, maybe,
with no answer journalled. So every node of a cluster periodically (every
`lease_s`) takes over the `forwarded` rows of OTHER nodes whose `forwarded_at` is
older than the longest request timeout plus the SAF lease: no live node leaves a
request unanswered that long. They become `reversal_pending` and their parked
reversals due, exactly as the dead node's own recovery would have done. The SAF
items the dead node had claimed need nothing: their lease runs out and any node's
SAF sender claims them (`FOR UPDATE SKIP LOCKED`).

One conditional UPDATE (`... WHERE state = 'forwarded' ... RETURNING`) in one
journal write decides which node takes a row: two survivors never both take it.
The taker then frees the split-tender claims of the legs it took (a write of its
own: a taker dying in between leaves a sale under-paid, never over-paid).
"""

from __future__ import annotations

import math
import time

import structlog
import trio
from forecourt.switch.config import SwitchConfig
from forecourt.switch.journal import Journal, TakeOverStale
from forecourt.switch.saf import SafSender
from forecourt.switch.split_tender import release_in_flight

log = structlog.get_logger("forecourt.takeover")


def takeover_threshold(config: SwitchConfig) -> float:
    """Seconds after which another node's `forwarded` row is taken as abandoned."""
    longest = max((a.request_timeout_s for a in config.acquirers), default=10.0)
    if not math.isfinite(longest):
        longest = 60.0
    return longest + config.saf.lease_s


async def take_over_once(
    journal: Journal, node: str, threshold_s: float, now: float | None = None
) -> list[tuple[str, str]]:
    """One pass: [(txn_id, dead node)] of the rows this node took over."""
    at = time.time() if now is None else now
    (taken,) = await journal.write(TakeOverStale(node, at - threshold_s, at))
    assert isinstance(taken, list)
    if taken:  # split legs among them free their part of their sale (this node took them)
        releases = release_in_flight(await journal.get_many([txn for txn, _ in taken]))
        if releases:
            await journal.write(*releases)
    return taken


async def run_takeover(
    journal: Journal,
    node: str,
    *,
    every_s: float,
    threshold_s: float,
    saf: SafSender | None = None,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Every `every_s`: take over abandoned rows of other nodes; wake SAF if any."""
    task_status.started()
    while True:
        await trio.sleep(every_s)
        try:
            taken = await take_over_once(journal, node, threshold_s)
        except Exception as exc:  # the journal is down: try again next round
            log.warning("takeover_failed", error=type(exc).__name__)
            continue
        if taken:
            nodes = sorted({n for _, n in taken})
            log.warning("took_over_in_flight", count=len(taken), from_nodes=",".join(nodes))
            if saf is not None:
                saf.wake()
