"""The business day's task in the switch: close each day at its cut-over, send the
host totals it queued, and count closed days again for their late lines.

`BusinessDay.run` lives in the switch's outer nursery, on every node. Every node
tries to close the day at the cut-over; the day's row is the claim, so one node
closes it and the others find it closed. A queued host-totals request is claimed
(with a lease) by a node that has the acquirer's link up, sent over that link
like any request (the link's STAN, its MAC under the ZAK), and its answer recorded.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable, Mapping
from typing import Any

import structlog
import trio
from forecourt.switch.authoriser import Authoriser, AuthoriserError, AuthoriserUnavailable
from forecourt.switch.business_day import Cutover, business_day_of, day_bounds
from forecourt.switch.config import SwitchConfig
from forecourt.switch.config_business_day import BusinessDayConfig
from forecourt.switch.journal import CancelShiftParked, Journal, JournalError
from forecourt.switch.metrics import SwitchMetrics
from prometheus_client import CollectorRegistry, Counter

from .host_totals import Figures, SeveralCurrencies, read_answer, reconciliation_request
from .ops import BookLate, ClaimHostTotals, CloseDay, DayClosed, RecordHostTotals
from .totals import DayLine, changed_query, day_query, late_query, roll_up

__all__ = [
    "BusinessDay",
    "HostTotalsMetrics",
    "business_day_task",
    "day_lines_now",
    "iso8583_acquirers",
]

log = structlog.get_logger("forecourt.day")

_ISO8583 = "iso8583"
_LATE_DAYS = 7  # closed days counted again for late lines
_CLOSED = "SELECT 1 FROM business_days WHERE day = ?"
_RETRY_S = 30.0


class HostTotalsMetrics:
    """forecourt_host_totals{acquirer, result}: in_balance, out_of_balance,
    not_reconciled (the host answered neither), no_answer."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.results = Counter(
            "forecourt_host_totals",
            "Host totals exchanges (1520 / 0500) by acquirer and result",
            ["acquirer", "result"],
            registry=registry,
        )


async def day_lines_now(journal: Journal, day: dt.date, cutover: Cutover) -> list[DayLine]:
    """The day counted now, from the transactions (frozen and late together)."""
    start, end = day_bounds(day, cutover)
    return roll_up(await journal.rows(*day_query(start, end)))


class BusinessDay:
    """Closes days and exchanges host totals for one node."""

    def __init__(
        self,
        config: BusinessDayConfig,
        journal: Journal,
        authorisers: Mapping[str, Authoriser],
        node: str,
        *,
        metrics: HostTotalsMetrics | None = None,
        clock: Callable[[], float] = time.time,
        poll_s: float = 2.0,
        acquirers: tuple[str, ...] | None = None,
    ) -> None:
        self.config = config
        self.cutover = config.cutover
        self._journal = journal
        self._links = authorisers
        self._node = node
        self._metrics = metrics
        self._clock = clock
        self._poll_s = poll_s
        self._acquirers = acquirers

    @property
    def host_links(self) -> tuple[str, ...]:
        """The ISO 8583 acquirers: the ones a reconciliation request goes to (the
        configuration's, for a close without links: `forecourt day close`)."""
        if self._acquirers is not None:
            return self._acquirers
        return tuple(name for name, link in self._links.items() if link.kind == _ISO8583)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            try:
                await self._catch_up()
            except JournalError as exc:
                log.warning("business_day_catch_up_failed", error=str(exc))
            nursery.start_soon(self._cutovers)
            nursery.start_soon(self._every, self._poll_s, self.send_due)
            nursery.start_soon(self._every, self.config.late_every_s, self.book_late)
            task_status.started()

    # -- closing ---------------------------------------------------------------------

    async def close_day(self, day: dt.date, reason: str) -> DayClosed | None:
        """Close `day` (once, whichever node asks first); None when it was closed."""
        start, end = day_bounds(day, self.cutover)
        acquirers = self.host_links if self.config.host_totals else ()
        if await self._journal.rows(_CLOSED, (day.isoformat(),)):
            log.info("business_day_closed_elsewhere", day=day.isoformat())
            return None
        # counted on a reader, so the writer (every terminal's transaction) never waits
        # for it; what is journalled between this count and the close shows as late
        lines = tuple(await day_lines_now(self._journal, day, self.cutover))
        op = CloseDay(
            day.isoformat(),
            start,
            end,
            self._clock(),
            self._node,
            reason,
            self.config.open_shifts,
            acquirers,
            lines,
        )
        (closed,) = await self._journal.write(op)
        if not isinstance(closed, DayClosed):
            log.info("business_day_closed_elsewhere", day=op.day)
            return None
        if closed.closed_shifts:
            # the closed shifts' approved sales are final: their parked reversals go
            await self._journal.write(*(CancelShiftParked(t, s) for t, s in closed.closed_shifts))
        log.info(
            "business_day_closed",
            day=op.day,
            reason=reason,
            shifts_closed=len(closed.closed_shifts),
            shifts_rolled=closed.rolled,
            host_totals=closed.host_requests,
        )
        return closed

    async def _catch_up(self) -> None:
        """The day before this one, when it has transactions and nobody closed it (the
        switch was down at its cut-over)."""
        day = business_day_of(self._clock(), self.cutover) - dt.timedelta(days=1)
        start, end = day_bounds(day, self.cutover)
        query = self._journal.rows
        closed = await query(_CLOSED, (day.isoformat(),))
        if closed:
            return
        busy = await query(
            "SELECT 1 FROM transactions WHERE received_at >= ? AND received_at < ? LIMIT 1",
            (start, end),
        )
        if busy:
            await self.close_day(day, "cutover")

    async def _cutovers(self) -> None:
        day = business_day_of(self._clock(), self.cutover)
        while True:
            _, end = day_bounds(day, self.cutover)
            wait = end - self._clock()
            if wait > 0:
                await trio.sleep(min(wait, 30.0))  # the wall clock may be set meanwhile
                continue
            try:
                await self.close_day(day, "cutover")
            except JournalError as exc:  # the database is away: try again, same day
                log.warning("business_day_close_failed", day=day.isoformat(), error=str(exc))
                await trio.sleep(_RETRY_S)
                continue
            day += dt.timedelta(days=1)

    async def _every(self, period_s: float, job: Callable[[], Any]) -> None:
        """`job` every `period_s`; a journal failure is logged and the next run tries
        again (the switch goes on serving)."""
        while True:
            await trio.sleep(period_s)
            try:
                await job()
            except JournalError as exc:
                log.warning("business_day_job_failed", job=job.__name__, error=str(exc))

    async def book_late(self) -> int:
        """Count the recently closed days again: their late lines. Rows flagged."""
        since = business_day_of(self._clock(), self.cutover) - dt.timedelta(days=_LATE_DAYS)
        days = await self._journal.rows(
            "SELECT day FROM business_days WHERE day >= ? ORDER BY day", (since.isoformat(),)
        )
        flagged = 0
        for (day,) in days:
            flagged += await self.book_late_day(dt.date.fromisoformat(str(day)))
        if flagged:
            log.info("business_day_late_rows", rows=flagged)
        return flagged

    async def book_late_day(self, day: dt.date) -> int:
        """Count closed `day` again when anything of it arrived since the last count
        (always, the first time after its close); rows newly flagged late."""
        found = await self._journal.rows(
            "SELECT start_at, end_at, closed_at, late_at FROM business_days WHERE day = ?",
            (day.isoformat(),),
        )
        if not found:
            return 0
        start, end, closed_at, late_at = found[0]
        if late_at is not None and not await self._journal.rows(
            *changed_query(float(start), float(end), float(late_at))
        ):
            return 0
        at = self._clock()
        lines = tuple(roll_up(await self._journal.rows(*day_query(float(start), float(end)))))
        ids = await self._journal.rows(*late_query(float(start), float(end), float(closed_at)))
        op = BookLate(day.isoformat(), at, lines, tuple(str(r[0]) for r in ids))
        (flagged,) = await self._journal.write(op)
        assert isinstance(flagged, int)
        return flagged

    # -- host totals -----------------------------------------------------------------

    async def send_due(self) -> int:
        """Send the queued host totals this node has a link up for; how many."""
        links = tuple(n for n in self.host_links if n in self._links and self._links[n].available)
        if not links:
            return 0
        (claimed,) = await self._journal.write(ClaimHostTotals(self._node, links, self._clock()))
        assert isinstance(claimed, list)
        for request_id, day, acquirer in claimed:
            await self._exchange(request_id, dt.date.fromisoformat(day), self._links[acquirer])
        return len(claimed)

    async def _exchange(self, request_id: int, day: dt.date, link: Authoriser) -> None:
        lines = await day_lines_now(self._journal, day, self.cutover)
        try:
            ours = Figures.of_acquirer(lines, link.name)
        except SeveralCurrencies as exc:
            failed = RecordHostTotals(request_id, "failed", self._clock(), error=str(exc))
            await self._record(failed)
            return
        request = reconciliation_request(ours, day, link.family, self._clock())
        sent = json.dumps(ours.as_json(), sort_keys=True)
        try:
            answer = await link.authorise(request)
        except AuthoriserUnavailable as exc:  # the link went down: another try later
            op = RecordHostTotals(request_id, "pending", self._clock(), error=str(exc))
            await self._record(op)
            return
        except AuthoriserError as exc:
            self._count(link.name, "no_answer")
            log.warning("host_totals_no_answer", acquirer=link.name, day=day.isoformat())
            await self._record(
                RecordHostTotals(
                    request_id, "failed", self._clock(), request.mti, ours=sent,
                    error=type(exc).__name__,
                )
            )  # fmt: skip
            return
        verdict = read_answer(answer.message, link.family)
        result = {True: "in_balance", False: "out_of_balance", None: "not_reconciled"}
        self._count(link.name, result[verdict.in_balance])
        theirs = verdict.theirs
        await self._record(
            RecordHostTotals(
                request_id,
                "answered",
                self._clock(),
                request_mti=request.mti,
                stan=answer.reference,
                action_code=verdict.action_code,
                in_balance=verdict.in_balance,
                ours=sent,
                theirs=None if theirs is None else json.dumps(theirs.as_json(), sort_keys=True),
            )
        )
        log.info(
            "host_totals_answered",
            acquirer=link.name,
            day=day.isoformat(),
            action_code=verdict.action_code,
            result=result[verdict.in_balance],
        )

    async def _record(self, op: RecordHostTotals) -> None:
        await self._journal.write(op)

    def _count(self, acquirer: str, result: str) -> None:
        if self._metrics is not None:
            self._metrics.results.labels(acquirer=acquirer, result=result).inc()


def business_day_task(
    config: SwitchConfig,
    journal: Journal,
    authorisers: Mapping[str, Authoriser],
    metrics: SwitchMetrics,
) -> BusinessDay:
    """The switch's business-day task, its metrics on the switch's registry."""
    return BusinessDay(
        config.business_day,
        journal,
        authorisers,
        config.node,
        metrics=HostTotalsMetrics(metrics.registry),
        poll_s=config.business_day.poll_s,
    )


def iso8583_acquirers(config: SwitchConfig) -> tuple[str, ...]:
    """The configured acquirers a reconciliation request goes to."""
    return tuple(a.name for a in config.acquirers if a.kind == _ISO8583)
