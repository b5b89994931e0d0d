"""Store-and-forward: deliver queued reversals and advices until the host says yes.

Items are claimed from the journal with a lease (another node takes them over if
this one dies), sent with the repeat MTI after the first attempt, and retried
with exponential backoff and jitter. A technical answer (system malfunction,
issuer unavailable, format error, MAC trouble) or no answer keeps an item queued;
after `max_attempts` it is flagged for an operator. SAF has its own share of each
link's in-flight cap, so it never starves live traffic.
"""

from __future__ import annotations

import random
import time
from collections.abc import Mapping

import structlog
import trio
from forecourt.codecs.action_codes import Outcome, outcome_of
from forecourt.codecs.message import Message
from forecourt.codecs.mti import mti_class, repeat_mti
from forecourt.switch.authoriser import Authoriser, AuthoriserError
from forecourt.switch.config import SafConfig
from forecourt.switch.journal import (
    AddEvent,
    CompleteSaf,
    Event,
    ExpireParked,
    Journal,
    SafItem,
    WriteOp,
)
from forecourt.switch.metrics import SwitchMetrics
from forecourt.switch.reversal import original_reference, saf_message

log = structlog.get_logger("forecourt.saf")

# Answers that say "not now" rather than "no": the item stays queued.
_TECHNICAL = frozenset(
    {
        Outcome.SYSTEM_MALFUNCTION,
        Outcome.ISSUER_TIMEOUT,
        Outcome.ISSUER_UNAVAILABLE,
        Outcome.FORMAT_ERROR,
        Outcome.MAC_INCORRECT,
        Outcome.MAC_KEY_SYNC,
        Outcome.DUPLICATE,
        Outcome.INVALID_TRANSACTION,  # 902 (read as a malfunction before it had a name)
    }
)


class SafSender:
    """The one owner of SAF delivery in a switch process."""

    def __init__(
        self,
        journal: Journal,
        links: Mapping[str, Authoriser],
        config: SafConfig,
        metrics: SwitchMetrics,
        node: str,
        poll_s: float = 0.5,
        hold_approved_s: float = 900.0,
        done_retention_s: float = 86400.0,
    ) -> None:
        self._journal = journal
        self._links = links
        self._config = config
        self._metrics = metrics
        self._node = node
        self._poll_s = poll_s
        self._wake = trio.Event()
        self._busy: dict[str, int] = dict.fromkeys(links, 0)
        self.delivered = 0
        self._hold_approved_s = hold_approved_s
        self._done_retention_s = done_retention_s
        self._next_stats = 0.0
        self._next_sweep = time.time() + 60.0

    def wake(self) -> None:
        """Something was queued: look now rather than at the next poll."""
        self._wake.set()

    def _share(self, link: Authoriser) -> int:
        return max(1, int(link.max_in_flight * self._config.in_flight_share))

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            task_status.started()
            while True:
                for name, link in self._links.items():
                    room = self._share(link) - self._busy[name]
                    if not link.available or room <= 0:
                        continue
                    items = await self._journal.saf_claim(
                        self._node, limit=room, lease_s=self._config.lease_s, link=name
                    )
                    for item in items:
                        self._busy[name] += 1
                        nursery.start_soon(self._deliver, item, link)
                now = time.time()
                if now >= self._next_stats:
                    await self._publish_depth()
                    self._next_stats = now + 5.0
                if now >= self._next_sweep:
                    await self._sweep(now)
                    self._next_sweep = now + 60.0
                with trio.move_on_after(self._poll_s):
                    await self._wake.wait()
                self._wake = trio.Event()

    async def _sweep(self, now: float) -> None:
        """Erase reversals held past the hold window; drop delivered items past retention.

        In chunks, each its own journal write, so live writes interleave with them."""
        op = ExpireParked(now - self._hold_approved_s, now - self._done_retention_s, now)
        erased = deleted = forgotten = chunks = 0
        while True:
            (counts,) = await self._journal.write(op)
            if not isinstance(counts, tuple):
                break
            erased += counts[0]
            deleted += counts[1]
            forgotten += counts[2]  # sealed payloads kept for an advice, past erase_at
            chunks += 1
            if max(counts) < op.limit:
                break
        if erased or deleted or forgotten:
            log.info(
                "saf_housekeeping",
                erased_held=erased,
                deleted_done=deleted,
                erased_kept=forgotten,
                chunks=chunks,
            )

    async def _publish_depth(self) -> None:
        stats = await self._journal.saf_stats()
        for name in self._links:
            self._metrics.saf_depth.labels(link=name).set(stats.depth_by_link.get(name, 0))
        self._metrics.saf_flagged.set(stats.flagged)

    async def _deliver(self, item: SafItem, link: Authoriser) -> None:
        try:
            message = saf_message(item.payload)
            if item.attempts > 1:
                message = message.with_fields({}, mti=repeat_mti(message.mti))
            bound = log.bind(
                txn_id=item.txn_id, link=link.name, mti=message.mti, attempt=item.attempts
            )
            try:
                answer = await link.authorise(message)
            except AuthoriserError as exc:
                await self._not_yet(item, type(exc).__name__, bound)
                return
            code = answer.message.fields.get("39", "")
            outcome = outcome_of(code, link.family)
            if outcome in _TECHNICAL:
                await self._not_yet(item, f"host answered {code}", bound)
                return
            await self._acknowledged(item, code, link)
            bound.info("saf_delivered", action_code=code)
        finally:
            self._busy[link.name] -= 1

    async def _not_yet(
        self, item: SafItem, reason: str, bound: structlog.typing.FilteringBoundLogger
    ) -> None:
        if item.attempts >= self._config.max_attempts:
            await self._journal.saf_flag(item.id, reason)
            bound.error("saf_flagged_for_manual_handling", reason=reason)
            return
        delay = self._config.backoff(item.attempts) * random.uniform(0.5, 1.0)
        await self._journal.saf_retry(item.id, reason, time.time() + delay)
        bound.warning("saf_retry", reason=reason, retry_in_s=round(delay, 3))

    async def _acknowledged(self, item: SafItem, code: str, link: Authoriser) -> None:
        """The host took it: close the item and settle the transactions it concerns."""
        ops: list[WriteOp] = [CompleteSaf(item.id)]
        row = await self._journal.get(item.txn_id)
        stand_in = row is not None and "stand_in" in row.flags
        reversal = mti_class(item.mti) == "4"
        message = saf_message(item.payload) if stand_in and reversal else None
        if message is not None and not _names_an_advice(message, link):
            # the reversal of the request that timed out before the switch stood in:
            # the stand-in approval stands, its advice goes next
            event = Event(item.txn_id, time.time(), "timed_out_request_reversed", code)
            ops.append(AddEvent(event))
        elif message is not None and "30" in message.fields:
            # a terminal's partial reversal of the stand-in approval: the final amount
            ops += self._journal.update_ops(item.txn_id, approved_amount=int(message.fields["4"]))
        elif reversal:
            if row is not None and row.mti_class == "4":
                # a terminal's reversal: it is done, and its original is settled
                ops += self._journal.update_ops(item.txn_id, state="approved", action_code=code)
                if row.original_txn_id is not None:
                    if "partial" in row.flags:
                        ops += self._journal.update_ops(
                            row.original_txn_id, approved_amount=row.amount
                        )
                    else:
                        ops += self._journal.update_ops(row.original_txn_id, state="reversed")
            else:
                ops += self._journal.update_ops(item.txn_id, state="reversed")
        else:
            ops += [AddEvent(Event(item.txn_id, time.time(), "advice_delivered", code))]
        await self._journal.write(*ops)
        self.delivered += 1
        if stand_in and mti_class(item.mti) != "4":
            self._metrics.stand_in_advices.labels(link=link.name).inc()


def _names_an_advice(message: Message, link: Authoriser) -> bool:
    """A reversal naming an advice (x220): one of a stand-in approval's own."""
    ref = original_reference(message, link.family)
    return ref is not None and ref[0][2:3] == "2"
