"""Copies of a request already seen: wait for the first, or replay its journalled answer.

A request is identified by (MTI class, terminal id, STAN). A copy of one in flight
waits for its answer; a retransmission of a finished one gets the journalled answer
again, MAC'd anew, but never an approval that has since been reversed, and never a
second authorisation. A row with no answer bytes (left `reversal_pending` by crash
recovery, or `failed`) gets its recorded outcome: what the terminal would have heard.

The in-memory window is the whole check while it reaches back far enough: a copy
is accepted only while its field 7 is within the tolerance, so its original was
received no earlier than field 7 minus the tolerance. When the window has let go of
requests received since then (a high rate, a small window, just after a start) and
this key may be among them (`matching.LetGo`), the journal is asked; a single node
otherwise never reads the journal for a new request. With a shared journal (several
nodes) it is asked on every window miss. So it is for an advice of a batch (48-4): a
batch is uploaded again after a 501 or a crash, however late, with new field 7s, and
the journal's row of the same batch is its original whenever it came.
"""

from __future__ import annotations

import time

import structlog
import trio
from forecourt.codecs.action_codes import Outcome, is_approved
from forecourt.codecs.dialect import decode
from forecourt.codecs.errors import CodecError
from forecourt.codecs.message import Message
from forecourt.codecs.mti import RequestKey
from forecourt.switch.answering import TerminalAnswers
from forecourt.switch.batch_records import is_batch_advice, same_batch
from forecourt.switch.context import ListenerContext, PipelineSettings
from forecourt.switch.journal import Journal, JournalRow
from forecourt.switch.matching import FinishedRequest, TerminalRequests
from forecourt.switch.metrics import SwitchMetrics
from forecourt.switch.transmission_time import earliest_original

# Rows that ended without answer bytes, and what a retransmission of them hears.
_UNANSWERED_OUTCOME = {
    "reversal_pending": Outcome.ISSUER_TIMEOUT,
    "reversed": Outcome.ISSUER_TIMEOUT,
    "timed_out": Outcome.ISSUER_TIMEOUT,
    "failed": Outcome.SYSTEM_MALFUNCTION,
}


class Retransmissions:
    def __init__(
        self,
        requests: TerminalRequests,
        journal: Journal,
        answers: TerminalAnswers,
        metrics: SwitchMetrics,
        settings: PipelineSettings,
        longest_timeout_s: float,
    ) -> None:
        self._requests = requests
        self._journal = journal
        self._answers = answers
        self._metrics = metrics
        self._settings = settings
        self._longest_timeout_s = longest_timeout_s

    async def answer_for(
        self,
        ctx: ListenerContext,
        key: RequestKey,
        amount: str | None,
        request: Message,
        bound: structlog.typing.FilteringBoundLogger,
    ) -> bytes | None:
        """The answer for a copy of a request already seen, or None for a new one."""
        entry = self._requests.in_flight(key)
        if entry is not None:
            self._metrics.duplicates.labels(kind="in_flight").inc()
            bound.info("duplicate_in_flight", txn_id=entry.txn_id)
            await entry.done.wait()
            if entry.answer is not None and entry.amount == amount:
                return await self._replay(ctx, key, entry.txn_id, entry.answer, request, bound)
            return await self._duplicate(ctx, request, key)
        finished = self._requests.finished(key)
        row: JournalRow | None = None
        if finished is None:
            if self._settings.duplicates_from_journal:
                self._metrics.duplicate_lookups.labels(why="cluster").inc()
                row = await self._journal.find_by_terminal_key(*key)
            else:
                since = self._beyond_window(ctx, key, request)
                batch = is_batch_advice(request)
                if since is None and not batch:
                    return None  # the hot path: the window holds the original, if any
                why = "batch" if since is None else "beyond_window"
                self._metrics.duplicate_lookups.labels(why=why).inc()
                row = await self._journal.find_by_terminal_key(*key)
                older = row is not None and (since is None or row.received_at < since)
                if row is not None and older and not same_batch(row, request):
                    row = None  # an older use of this key (its STAN came round): not a copy
            if row is not None and row.response_raw is None and row.state == "forwarded":
                # in flight at another node: wait for its answer, never forward twice
                row = await self._answered_elsewhere(key, row)
                if row is None:
                    return await self._duplicate(ctx, request, key)
            if row is None or (row.response_raw is None and row.state not in _UNANSWERED_OUTCOME):
                return None
            finished = self.remember(key, row)
            if finished is None:
                return None
        self._metrics.duplicates.labels(kind="retransmission").inc()
        if finished.amount != amount:
            bound.warning("duplicate_different_amount", txn_id=finished.txn_id)
            return await self._duplicate(ctx, request, key)
        if row is None:
            # the window keeps no answer bytes: the journal has them, durable before
            # the terminal heard them, and says whether the answer was since reversed
            row = await self._journal.get(finished.txn_id)
        if row is not None and row.response_raw is None:
            outcome = _UNANSWERED_OUTCOME.get(row.state)
            if outcome is not None:
                bound.warning("retransmission_of_unanswered", txn_id=row.txn_id, state=row.state)
                return await self._answers.local(ctx, request, key.terminal_id, outcome)
        if row is None or row.response_raw is None:
            # pruned from the journal since: say duplicate, never forward again
            bound.warning("retransmission_answer_not_in_journal", txn_id=finished.txn_id)
            return await self._duplicate(ctx, request, key)
        try:
            # the bytes sent carry the MAC of their time: a replay is MAC'd anew
            answer = decode(ctx.dialect, row.response_raw).with_fields({64: None, 128: None})
        except CodecError:
            # answered on a listener of another dialect: say duplicate, never forward again
            return await self._duplicate(ctx, request, key)
        return await self._replay(ctx, key, finished.txn_id, answer, request, bound, row)

    def _beyond_window(
        self, ctx: ListenerContext, key: RequestKey, request: Message
    ) -> float | None:
        """Since when the journal must be asked about this request's key, or None when
        the window holds every request that can be its original.

        Without a bound (no tolerance, a flow that does not check field 7 sent
        without one) the window alone answers, as it always did.
        """
        tolerance = ctx.policy.transmission_tolerance_s
        earliest = earliest_original(request, tolerance, time.time())
        if earliest is None or not self._requests.left_since(key, earliest):
            return None
        return earliest

    async def _duplicate(self, ctx: ListenerContext, request: Message, key: RequestKey) -> bytes:
        return await self._answers.local(ctx, request, key.terminal_id, Outcome.DUPLICATE)

    async def _replay(
        self,
        ctx: ListenerContext,
        key: RequestKey,
        txn_id: str,
        answer: Message,
        request: Message,
        bound: structlog.typing.FilteringBoundLogger,
        row: JournalRow | None = None,
    ) -> bytes:
        """The journalled answer again; but never an approval that has since been reversed.

        Retransmissions are rare, so asking the journal here costs nothing on the hot
        path, and it sees reversals made anywhere (terminal, timeout, operator, node).
        """
        # authorisations and purchases only: a reversal's own 400 is no approval to take back
        if key.mti_class in ("1", "2") and is_approved(
            answer.fields.get("39", ""), ctx.dialect.family
        ):
            if row is None:
                row = await self._journal.get(txn_id)
            if row is not None and row.state in ("reversal_pending", "reversed"):
                bound.warning("retransmission_of_reversed_transaction", txn_id=txn_id)
                return await self._duplicate(ctx, request, key)
        bound.info("retransmission_replayed", txn_id=txn_id)
        self._answers.count(answer)
        return await self._answers.maced(ctx, key.terminal_id, answer)

    async def _answered_elsewhere(self, key: RequestKey, row: JournalRow) -> JournalRow | None:
        """Poll the shared journal while another node's request with this key is in
        flight (bounded by the longest request timeout); None if never answered."""
        deadline = trio.current_time() + min(self._longest_timeout_s, 60.0) + 1.0
        while trio.current_time() < deadline:
            await trio.sleep(0.05)
            got = await self._journal.find_by_terminal_key(*key)
            if got is None or got.txn_id != row.txn_id:
                return got
            if got.response_raw is not None or got.state != "forwarded":
                return got
        return None

    def remember(self, key: RequestKey, row: JournalRow) -> FinishedRequest | None:
        """Put a journalled outcome into the duplicate window: an answer sent, or a
        row that ended without one (so its retransmission is never forwarded)."""
        if row.response_raw is None and row.state not in _UNANSWERED_OUTCOME:
            return None
        amount = None if row.amount is None else f"{row.amount:012d}"
        finished = FinishedRequest(row.txn_id, amount)
        self._requests.remember(key, finished)
        return finished
