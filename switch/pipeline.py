"""The per-message path from a terminal's frame to the answer it gets.

decode -> terminal known? -> MAC valid? -> duplicate? -> route -> journal ->
forward -> await the match or the timeout -> journal -> MAC the answer -> answer.

Every failure is a typed error caught here and turned into an action code and one
log line; nothing a terminal sends can stop the switch.

Losing nothing: before a request leaves for the host, its reversal is parked in the
store-and-forward queue in the same durable write as the journal row. The answer's
write cancels it (or, for an approved pre-authorisation, re-arms it for the end of
the completion window); a timeout, a terminal that went away, or a crash makes it
due, and SAF delivers it. So nothing is approved at a host without either a
journalled answer or a queued reversal.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Protocol

import attrs
import structlog
import trio
from forecourt.codecs.action_codes import Outcome, code_for, is_approved
from forecourt.codecs.dialect import Dialect, decode, encode, encode_with_mac, identify, mac_input
from forecourt.codecs.errors import CodecError, DecodeError
from forecourt.codecs.fields import mask_pan
from forecourt.codecs.message import Message
from forecourt.codecs.mti import is_advice, is_request, mti_class
from forecourt.codecs.network import NetworkFunction, network_function
from forecourt.switch.answers import local_answer, relay_answer
from forecourt.switch.authoriser import (
    Authoriser,
    AuthoriserBusy,
    AuthoriserError,
    AuthoriserTimeout,
)
from forecourt.switch.journal import (
    AddEvent,
    CancelParked,
    CancelShiftParked,
    CompleteSaf,
    Event,
    InsertTransaction,
    Journal,
    JournalRow,
    RetrySaf,
    WriteOp,
    new_txn_id,
)
from forecourt.switch.matching import FinishedRequest, TerminalKey, TerminalRequests
from forecourt.switch.metrics import SwitchMetrics
from forecourt.switch.reversal import (
    ReversalReason,
    original_reference,
    point_at_host_original,
    saf_payload,
    switch_reversal,
)
from forecourt.switch.routing import NoRoute, Router
from forecourt.switch.shifts import ShiftBook, reconcile
from forecourt.switch.transaction import TxnRecord, journal_row, pan_of
from forecourt.switch.translate import across_families, convert_mti
from prometheus_client import Counter, Histogram

log = structlog.get_logger("forecourt.pipeline")

# A parked reversal waits this long unless something makes it due sooner
# (beyond the journal's PARKED_HORIZON_S, so it is not counted as SAF work).
_PARKED_S = 10 * 365 * 86400.0


class CloseConnection(Exception):
    """The frame cannot be answered (not even identified): the connection closes."""


class UnknownTerminal(Exception):
    """The terminal is not in its group or not registered: declined."""


class MacMismatch(Exception):
    """The MAC does not verify under any acceptable TAK: 916 / A0."""


class MacKeySyncError(Exception):
    """No acceptable TAK (expired, retired, or locked after failures): 917."""


class MacGenerator(Protocol):
    def generate(self, data: bytes) -> bytes: ...


class TerminalKeys(Protocol):
    """What the pipeline needs of the key store (see switch/terminal_keys)."""

    def is_known(self, terminal_id: str) -> bool: ...

    async def verify(self, terminal_id: str, data: bytes, mac: bytes) -> str: ...

    async def answer_mac(self, terminal_id: str) -> MacGenerator | None: ...

    async def sign_on(self, terminal_id: str, family: str) -> tuple[int, str]: ...

    async def delivered(self, terminal_id: str) -> None: ...


class SafWaker(Protocol):
    def wake(self) -> None: ...


@attrs.frozen
class TerminalPolicy:
    """The terminal group's rules, as the pipeline applies them."""

    terminals: frozenset[str] | None  # None: the key store's registry decides
    mac_required: bool
    max_in_flight: int = 16
    mac_failures_before_lock: int = 5


@attrs.frozen
class ListenerContext:
    name: str
    dialect: Dialect
    policy: TerminalPolicy


@attrs.frozen
class Reply:
    """An encoded answer, and the transaction to reverse if it cannot be delivered.

    With a record, the session calls `Pipeline.settle` once it has tried to deliver
    it: until then the request is in flight, and its copies wait.
    """

    payload: bytes
    record: TxnRecord | None = None
    answer: Message | None = None


@attrs.frozen
class PipelineSettings:
    reverse_on_disconnect: bool = True
    preauth_window_s: float = 1800.0
    # Ask the journal about keys not in the in-memory window (several nodes share
    # one journal); a single node warms the window at start instead.
    duplicates_from_journal: bool = False


class Pipeline:
    """Shared by every session of a switch process; owns the terminal-side state."""

    def __init__(
        self,
        *,
        router: Router,
        links: Mapping[str, Authoriser],
        keys: TerminalKeys,
        journal: Journal,
        metrics: SwitchMetrics,
        node: str = "local",
        settings: PipelineSettings | None = None,
        saf: SafWaker | None = None,
        requests: TerminalRequests | None = None,
        shifts: ShiftBook | None = None,
    ) -> None:
        self.node = node
        self.router = router
        self.links = links
        self.keys = keys
        self.journal = journal
        self.metrics = metrics
        self.settings = settings or PipelineSettings()
        self.saf = saf
        self.requests = requests or TerminalRequests()
        self.shifts = shifts or ShiftBook()
        self._mac_failures: dict[str, int] = {}
        self._locked: set[str] = set()
        self._per_terminal: dict[str, int] = {}
        self._counters: dict[tuple[str, str, str], Counter] = {}
        self._host_latency_by_link: dict[str, Histogram] = {}

    # -- entry -----------------------------------------------------------------

    async def handle(self, ctx: ListenerContext, payload: bytes) -> Reply | None:
        """The answer to one frame, or None when nothing is to be sent.

        Raises CloseConnection when the frame cannot even be identified.
        """
        received = time.perf_counter()
        dialect = ctx.dialect
        try:
            request = decode(dialect, payload)
        except DecodeError as exc:
            return Reply(self._undecodable(ctx, payload, exc))
        if not is_request(request.mti):
            self.metrics.malformed.labels(side="terminal", reason="not_a_request").inc()
            log.warning("terminal_sent_non_request", mti=request.mti, listener=ctx.name)
            return None
        self._message_counter("from_terminal", request.mti, "").inc()
        terminal_id = request.fields.get("41")
        stan = request.fields.get("11")
        if terminal_id is None or stan is None:
            self.metrics.malformed.labels(side="terminal", reason="no_41_or_11").inc()
            return Reply(
                self._encode_plain(
                    dialect, local_answer(request, dialect.family, Outcome.FORMAT_ERROR)
                )
            )
        bound = log.bind(terminal_id=terminal_id, stan=stan, mti=request.mti)
        try:
            return await self._handle_request(ctx, request, terminal_id, stan, received, bound)
        except UnknownTerminal:
            self.metrics.rejections.labels(reason="unknown_terminal").inc()
            bound.warning("unknown_terminal")
            answer = local_answer(request, dialect.family, Outcome.UNKNOWN_TERMINAL)
            return Reply(self._encode_plain(dialect, answer))
        except MacMismatch:
            self.metrics.rejections.labels(reason="mac_mismatch").inc()
            return Reply(await self._answer_local(ctx, request, terminal_id, Outcome.MAC_INCORRECT))
        except MacKeySyncError:
            self.metrics.rejections.labels(reason="mac_key_sync").inc()
            return Reply(await self._answer_local(ctx, request, terminal_id, Outcome.MAC_KEY_SYNC))

    def _undecodable(self, ctx: ListenerContext, payload: bytes, exc: DecodeError) -> bytes:
        self.metrics.malformed.labels(side="terminal", reason="decode").inc()
        mti, terminal_id, stan = identify(ctx.dialect, payload)
        try:
            answerable = mti is not None and is_request(mti)
        except CodecError:
            answerable = False
        if not answerable or mti is None or terminal_id is None or stan is None:
            log.warning(
                "undecodable_frame_closed", listener=ctx.name, field=exc.field, reason=exc.reason
            )
            raise CloseConnection(str(exc))
        log.warning(
            "format_error",
            listener=ctx.name,
            terminal_id=terminal_id,
            stan=stan,
            mti=mti,
            field=exc.field,
            reason=exc.reason,
        )
        answer = local_answer(
            Message(mti=mti, fields={"11": stan, "41": terminal_id}),
            ctx.dialect.family,
            Outcome.FORMAT_ERROR,
        )
        return self._encode_plain(ctx.dialect, answer)

    def _encode_plain(self, dialect: Dialect, answer: Message) -> bytes:
        self._count_answer(answer)
        return encode(dialect, answer)

    def _count_answer(self, answer: Message) -> None:
        self._message_counter("to_terminal", answer.mti, answer.fields.get("39", "")).inc()

    def _host_latency(self, route: str) -> Histogram:
        child = self._host_latency_by_link.get(route)
        if child is None:
            child = self.metrics.host_latency.labels(link=route)
            self._host_latency_by_link[route] = child  # bounded: routes are configured
        return child

    def _message_counter(self, direction: str, mti: str, action_code: str) -> Counter:
        """The labelled counter child, cached (``labels()`` costs more than ``inc()``)."""
        key = (direction, mti, action_code)
        child = self._counters.get(key)
        if child is None:
            child = self.metrics.messages.labels(
                direction=direction, mti=mti, action_code=action_code
            )
            if len(self._counters) < 10_000:  # bounded whatever MTIs and codes arrive
                self._counters[key] = child
        return child

    # -- requests ----------------------------------------------------------------

    async def _handle_request(
        self,
        ctx: ListenerContext,
        request: Message,
        terminal_id: str,
        stan: str,
        received: float,
        bound: structlog.typing.FilteringBoundLogger,
    ) -> Reply | None:
        policy = ctx.policy
        if policy.terminals is not None:
            if terminal_id not in policy.terminals:
                raise UnknownTerminal(terminal_id)
        elif not self.keys.is_known(terminal_id):
            raise UnknownTerminal(terminal_id)

        function = network_function(request)
        if function is not None:
            return Reply(await self._network(ctx, request, terminal_id, function, bound))

        if policy.mac_required:
            await self._check_mac(ctx, request, terminal_id, bound)

        key: TerminalKey = (mti_class(request.mti), terminal_id, stan)
        amount = request.fields.get("4")
        replay = await self._duplicate(ctx, key, amount, request, bound)
        if replay is not None:
            return Reply(replay)

        if self._per_terminal.get(terminal_id, 0) >= policy.max_in_flight:
            bound.warning("terminal_in_flight_cap")
            return Reply(
                await self._answer_local(ctx, request, terminal_id, Outcome.ISSUER_UNAVAILABLE)
            )

        pan = pan_of(request)
        record = TxnRecord(
            txn_id=new_txn_id(),
            terminal_id=terminal_id,
            stan=stan,
            mti_class=key[0],
            request_mti=request.mti,
            masked_pan=mask_pan(pan) if pan else None,
            amount=amount,
            processing_code=request.fields.get("3"),
            received_at=time.time(),
            currency=request.fields.get("49"),
            shift_id=self.shifts.current(terminal_id),
        )
        self.requests.begin(key, record.txn_id, amount)
        self._per_terminal[terminal_id] = self._per_terminal.get(terminal_id, 0) + 1
        self.metrics.in_flight.inc()
        answer: Message | None = None
        replied = False
        try:
            bound = bound.bind(txn_id=record.txn_id)
            answer = await self._dispatch(ctx, request, record, bound)
            payload = await self._mac_answer(ctx, terminal_id, answer)
            record.answer_raw = payload  # the bytes sent (MAC included): no second encode
            record.response_mti = answer.mti
            record.action_code = answer.fields.get("39")
            record.answered_at = time.time()
            total = time.perf_counter() - received
            host_s = (record.host_ms or 0.0) / 1000.0
            record.switch_ms = (total - host_s) * 1000.0
            await self._journal_answer(record)
            if self.saf is not None and record.pending_ops:
                self.saf.wake()
            self.metrics.switch_latency.observe(total - host_s)
            self._count_answer(answer)
            bound.info(
                "transaction",
                route=record.route,
                action_code=record.action_code,
                state=record.state,
                switch_ms=round(record.switch_ms, 3),
                host_ms=None if record.host_ms is None else round(record.host_ms, 3),
            )
            replied = True
            return Reply(payload, record, answer)
        finally:
            if not replied:
                self.requests.finish(key, answer, journalled=False)
            self.metrics.in_flight.dec()
            remaining = self._per_terminal.get(terminal_id, 1) - 1
            if remaining:
                self._per_terminal[terminal_id] = remaining
            else:
                self._per_terminal.pop(terminal_id, None)

    async def _dispatch(
        self,
        ctx: ListenerContext,
        request: Message,
        record: TxnRecord,
        bound: structlog.typing.FilteringBoundLogger,
    ) -> Message:
        cls = record.mti_class
        if cls == "4":
            return await self._terminal_reversal(ctx, request, record, bound)
        if cls == "5":
            return await self._reconciliation(ctx, request, record, bound)
        if is_advice(request.mti):
            return await self._advice(ctx, request, record, bound)
        return await self._forward(ctx, request, record, bound)

    async def _journal_answer(self, record: TxnRecord) -> None:
        """One durable write before the terminal hears the answer."""
        ops: list[WriteOp]
        if not record.inserted:
            ops = [
                InsertTransaction(journal_row(record, self.node)),
                AddEvent(Event(record.txn_id, record.received_at, record.state, None)),
            ]
        else:
            ops = self.journal.update_ops(
                record.txn_id,
                state=record.state,
                response_mti=record.response_mti,
                action_code=record.action_code,
                approved_amount=journal_amount(record.approved_amount),
                answered_at=record.answered_at,
                host_ms=record.host_ms,
                switch_ms=record.switch_ms,
                response_raw=record.answer_raw,
            )
        await self.journal.write(*ops, *record.pending_ops)
        record.inserted = True

    async def _duplicate(
        self,
        ctx: ListenerContext,
        key: TerminalKey,
        amount: str | None,
        request: Message,
        bound: structlog.typing.FilteringBoundLogger,
    ) -> bytes | None:
        """The answer for a copy of a request already seen, or None for a new one."""
        entry = self.requests.in_flight(key)
        if entry is not None:
            self.metrics.duplicates.labels(kind="in_flight").inc()
            bound.info("duplicate_in_flight", txn_id=entry.txn_id)
            await entry.done.wait()
            if entry.answer is not None and entry.amount == amount:
                return await self._replay(ctx, key, entry.txn_id, entry.answer, request, bound)
            return await self._answer_local(ctx, request, key[1], Outcome.DUPLICATE)
        finished = self.requests.finished(key)
        row: JournalRow | None = None
        if finished is None:
            if not self.settings.duplicates_from_journal:
                return None
            row = await self.journal.find_by_terminal_key(*key)
            if row is not None and row.response_raw is None and row.state == "forwarded":
                # in flight at another node: wait for its answer, never forward twice
                row = await self._answered_elsewhere(key, row)
                if row is None:
                    return await self._answer_local(ctx, request, key[1], Outcome.DUPLICATE)
            if row is None or row.response_raw is None:
                return None
            finished = self.remember(key, row)
            if finished is None:
                return None
        self.metrics.duplicates.labels(kind="retransmission").inc()
        if finished.amount != amount:
            bound.warning("duplicate_different_amount", txn_id=finished.txn_id)
            return await self._answer_local(ctx, request, key[1], Outcome.DUPLICATE)
        if row is None:
            # the window keeps no answer bytes: the journal has them, durable before
            # the terminal heard them, and says whether the answer was since reversed
            row = await self.journal.get(finished.txn_id)
        if row is None or row.response_raw is None:
            # pruned from the journal since: say duplicate, never forward again
            bound.warning("retransmission_answer_not_in_journal", txn_id=finished.txn_id)
            return await self._answer_local(ctx, request, key[1], Outcome.DUPLICATE)
        try:
            # the bytes sent carry the MAC of their time: a replay is MAC'd anew
            answer = decode(ctx.dialect, row.response_raw).with_fields({64: None, 128: None})
        except CodecError:
            # answered on a listener of another dialect: say duplicate, never forward again
            return await self._answer_local(ctx, request, key[1], Outcome.DUPLICATE)
        return await self._replay(ctx, key, finished.txn_id, answer, request, bound, row)

    async def _replay(
        self,
        ctx: ListenerContext,
        key: TerminalKey,
        txn_id: str,
        answer: Message,
        request: Message,
        bound: structlog.typing.FilteringBoundLogger,
        row: JournalRow | None = None,
    ) -> bytes:
        """The journalled answer again; but never an approval that has since been reversed.

        Retransmissions are rare, so asking the journal here costs nothing on the hot
        path, and it sees reversals made anywhere (terminal, timeout, operator, node).
        `row` is the journal's row if it was read just now.
        """
        # authorisations and purchases only: a reversal's own 400 is no approval to take back
        if key[0] in ("1", "2") and is_approved(answer.fields.get("39", ""), ctx.dialect.family):
            if row is None:
                row = await self.journal.get(txn_id)
            if row is not None and row.state in ("reversal_pending", "reversed"):
                bound.warning("retransmission_of_reversed_transaction", txn_id=txn_id)
                return await self._answer_local(ctx, request, key[1], Outcome.DUPLICATE)
        bound.info("retransmission_replayed", txn_id=txn_id)
        return await self._mac_answer(ctx, key[1], answer)

    async def _answered_elsewhere(self, key: TerminalKey, row: JournalRow) -> JournalRow | None:
        """Poll the shared journal while another node's request with this key is in
        flight (bounded by the longest request timeout); None if never answered."""
        limit = max((link.request_timeout_s for link in self.links.values()), default=5)
        deadline = trio.current_time() + min(limit, 60.0) + 1.0
        while trio.current_time() < deadline:
            await trio.sleep(0.05)
            got = await self.journal.find_by_terminal_key(*key)
            if got is None or got.txn_id != row.txn_id:
                return got
            if got.response_raw is not None or got.state != "forwarded":
                return got
        return None

    def remember(self, key: TerminalKey, row: JournalRow) -> FinishedRequest | None:
        """Put a journalled answer into the duplicate window."""
        if row.response_raw is None:
            return None
        amount = None if row.amount is None else f"{row.amount:012d}"
        finished = FinishedRequest(row.txn_id, amount)
        self.requests.remember(key, finished)
        return finished

    # -- forwarding ----------------------------------------------------------------

    def _link_for(self, request: Message, record: TxnRecord) -> Authoriser | Outcome:
        try:
            route = self.router.route(pan_of(request) or "")
        except NoRoute:
            return Outcome.DECLINED
        record.route = route
        link = self.links.get(route)
        if link is None or not link.available:
            return Outcome.ISSUER_UNAVAILABLE
        return link

    async def _forward(
        self,
        ctx: ListenerContext,
        request: Message,
        record: TxnRecord,
        bound: structlog.typing.FilteringBoundLogger,
    ) -> Message:
        family = ctx.dialect.family
        link = self._link_for(request, record)
        if isinstance(link, Outcome):
            record.state = "declined"
            bound.warning("route_unavailable", route=record.route)
            return local_answer(request, family, link)
        route = link.name
        host_family = link.family
        upstream = across_families(request.with_fields({64: None, 128: None}), family, host_family)

        async def journal_before_send(sent: Message) -> None:
            record.sent = sent
            record.acquirer_stan = sent.fields["11"]
            record.state = "forwarded"
            record.forwarded_at = time.time()
            reversal = switch_reversal(
                sent, sent.fields["11"], host_family, ReversalReason.HOST_TIMEOUT
            )
            parked = self.journal.saf_enqueue_op(
                record.txn_id,
                route,
                reversal.mti,
                saf_payload(reversal),
                next_attempt_at=record.forwarded_at + _PARKED_S,
            )
            results = await self.journal.write(
                InsertTransaction(journal_row(record, self.node)),
                AddEvent(Event(record.txn_id, record.forwarded_at, "forwarded", route)),
                parked,
            )
            record.inserted = True
            saf_id = results[-1]
            record.parked_saf_id = saf_id if isinstance(saf_id, int) else None

        try:
            answer = await link.authorise(upstream, before_send=journal_before_send)
        except AuthoriserTimeout:
            self.metrics.host_timeouts.labels(link=route).inc()
            bound.warning("host_timeout_reversal_queued", route=route)
            self._arm_reversal(record, "host timeout", time.time())
            return local_answer(request, family, Outcome.ISSUER_TIMEOUT)
        except AuthoriserError as exc:
            # nothing reached the host (busy, or the connection broke before sending)
            record.state = "declined"
            bound.warning("link_unavailable", route=route, reason=type(exc).__name__)
            if record.parked_saf_id is not None:
                if isinstance(exc, AuthoriserBusy) or record.sent is None:
                    record.pending_ops.append(CompleteSaf(record.parked_saf_id))
                else:
                    self._arm_reversal(record, "link broke while sending", time.time())
            return local_answer(request, family, Outcome.ISSUER_UNAVAILABLE)
        record.host_ms = answer.seconds * 1000.0
        self._host_latency(route).observe(answer.seconds)
        relayed = relay_answer(
            request, across_families(answer.message, host_family, family), family, host_family
        )
        code = relayed.fields.get("39", "")
        approved = is_approved(code, family)
        record.state = "approved" if approved else "declined"
        record.approved_amount = relayed.fields.get("4", record.amount) if approved else None
        if record.parked_saf_id is not None:
            # approved: the reversal stays parked in the journal (erased after the hold
            # window) until the terminal reverses or completes it or closes its shift
            if not approved:
                record.pending_ops.append(CompleteSaf(record.parked_saf_id))
            elif record.mti_class == "1":
                # an approved pre-authorisation is reversed unless completed in time
                record.pending_ops.append(
                    RetrySaf(
                        record.parked_saf_id,
                        "pre-authorisation not completed",
                        time.time() + self.settings.preauth_window_s,
                    )
                )
        return relayed

    def settle(self, reply: Reply) -> None:
        """The session delivered `reply`, or journalled why not: copies may hear it now.

        Not sooner: a retransmission (waiting for this answer, or coming later) must
        not hear an approval that `undelivered` is reversing; once its write is
        durable, `_replay` sees the reversal in the journal.
        """
        record = reply.record
        if record is not None:
            # a Reply with a record is returned only once its answer is journalled
            self.requests.finish(
                (record.mti_class, record.terminal_id, record.stan), reply.answer, journalled=True
            )

    def _arm_reversal(self, record: TxnRecord, reason: str, at: float) -> None:
        record.state = "reversal_pending"
        if record.parked_saf_id is not None:
            record.pending_ops.append(RetrySaf(record.parked_saf_id, reason, at))

    async def undelivered(self, record: TxnRecord) -> None:
        """The terminal went before it heard an approval: reverse it (reason 4020)."""
        if not self.settings.reverse_on_disconnect or record.state != "approved":
            return
        if record.mti_class not in ("1", "2"):
            return
        parked = record.parked_saf_id
        link = self.links.get(record.route or "")
        ops: list[WriteOp] = [*self.journal.update_ops(record.txn_id, state="reversal_pending")]
        if record.sent is not None and link is not None:
            reversal = switch_reversal(
                record.sent,
                record.sent.fields["11"],
                link.family,
                ReversalReason.UNDELIVERED,
            )
            ops.append(
                self.journal.saf_enqueue_op(
                    record.txn_id, link.name, reversal.mti, saf_payload(reversal)
                )
            )
            if parked is not None:
                ops.append(CompleteSaf(parked))
        elif parked is not None:
            ops.append(RetrySaf(parked, "terminal gone before the answer", time.time()))
        else:
            return
        await self.journal.write(*ops)
        log.warning("answer_undelivered_reversal_queued", txn_id=record.txn_id)
        if self.saf is not None:
            self.saf.wake()

    # -- reversals and advices from terminals -----------------------------------------

    async def _find_original(self, key: TerminalKey) -> JournalRow | None:
        return await self.journal.find_by_terminal_key(*key)

    async def _terminal_reversal(
        self,
        ctx: ListenerContext,
        request: Message,
        record: TxnRecord,
        bound: structlog.typing.FilteringBoundLogger,
    ) -> Message:
        family = ctx.dialect.family
        record.state = "answered_locally"
        ref = original_reference(request, family)
        if ref is None:
            return local_answer(request, family, Outcome.FORMAT_ERROR)
        original = await self._find_original((mti_class(ref[0]), record.terminal_id, ref[1]))
        if original is None:
            bound.warning("reversal_original_not_found")
            return local_answer(request, family, Outcome.ORIGINAL_NOT_FOUND)
        record.original_txn_id = original.txn_id
        record.route = original.route
        partial = "30" in request.fields and request.fields.get("4") is not None
        record.flags = ("partial",) if partial else ()
        if original.forwarded_at is None or original.route is None:
            bound.info("reversal_answered_locally_original_never_left", original=original.txn_id)
            return local_answer(request, family, Outcome.REVERSAL_ACCEPTED)
        if original.state in ("reversal_pending", "reversed") and not partial:
            bound.info("reversal_already_under_way", original=original.txn_id)
            return local_answer(request, family, Outcome.REVERSAL_ACCEPTED)
        link = self.links.get(original.route)
        if link is None:
            return local_answer(request, family, Outcome.ISSUER_UNAVAILABLE)
        record.state = "reversal_pending"
        self._queue_for_host(request, family, record, link, original)
        if original.state == "approved":
            # the terminal's reversal goes instead of the one the switch parked for it
            record.pending_ops.append(CancelParked(original.txn_id, "reversed by the terminal"))
        if not partial:
            record.pending_ops += self.journal.update_ops(original.txn_id, state="reversal_pending")
        bound.info("reversal_queued", original=original.txn_id, partial=partial)
        return local_answer(request, family, Outcome.REVERSAL_ACCEPTED)

    def _queue_for_host(
        self,
        request: Message,
        family: str,
        record: TxnRecord,
        link: Authoriser,
        original: JournalRow | None,
    ) -> None:
        """Queue a reversal or advice for the host (SAF, durable with the answer), its
        original reference (56/90) rewritten to name what the host saw."""
        host_family = link.family
        upstream = across_families(request.with_fields({64: None, 128: None}), family, host_family)
        if original is not None and original.acquirer_stan is not None:
            upstream = point_at_host_original(
                upstream,
                host_family,
                convert_mti(original.request_mti, host_family),
                original.acquirer_stan,
                link.acquirer_id,
            )
        record.pending_ops.append(
            self.journal.saf_enqueue_op(
                record.txn_id, link.name, upstream.mti, saf_payload(upstream)
            )
        )

    async def _advice(
        self,
        ctx: ListenerContext,
        request: Message,
        record: TxnRecord,
        bound: structlog.typing.FilteringBoundLogger,
    ) -> Message:
        """A completion (1220/0220): acknowledged once durably queued for the host."""
        family = ctx.dialect.family
        ref = original_reference(request, family)
        preauth: JournalRow | None = None
        if ref is not None:
            preauth = await self._find_original(("1", record.terminal_id, ref[1]))
        flags: list[str] = []
        link: Authoriser | None = None
        if preauth is None:
            flags.append("preauth_unknown")
        else:
            record.original_txn_id = preauth.txn_id
            answered = preauth.answered_at or preauth.received_at
            if (
                preauth.state != "approved"
                or time.time() - answered > self.settings.preauth_window_s
            ):
                flags.append("preauth_expired")
            if preauth.route is not None:
                link = self.links.get(preauth.route)
                record.route = preauth.route
        if link is None:
            routed = self._link_for(request, record)
            link = self.links.get(record.route or "") if isinstance(routed, Outcome) else routed
        if link is None:
            record.state = "declined"
            return local_answer(request, family, Outcome.ISSUER_UNAVAILABLE)
        record.route = link.name
        record.flags = tuple(flags)
        record.state = "approved"
        record.approved_amount = record.amount
        self._queue_for_host(request, family, record, link, preauth)
        if preauth is not None and preauth.state == "approved":
            # completed: the reversal due at the end of the window must not go
            record.pending_ops.append(CancelParked(preauth.txn_id, "completed"))
        if flags:
            bound.warning("completion_flagged", flags=",".join(flags))
        return local_answer(request, family, Outcome.APPROVED)

    # -- reconciliation ----------------------------------------------------------------

    async def _reconciliation(
        self,
        ctx: ListenerContext,
        request: Message,
        record: TxnRecord,
        bound: structlog.typing.FilteringBoundLogger,
    ) -> Message:
        family = ctx.dialect.family
        record.state = "answered_locally"
        shift_id = self.shifts.current(record.terminal_id)
        if shift_id is None:
            bound.warning("shift_close_without_open_shift")
            return local_answer(request, family, Outcome.DECLINED)
        totals = await self.journal.totals(record.terminal_id, shift_id)
        result = reconcile(request, totals)
        await self.journal.shift_close(
            record.terminal_id, shift_id, result.as_journal(), result.in_balance
        )
        self.shifts.closed(record.terminal_id)
        record.pending_ops.append(CancelShiftParked(record.terminal_id, shift_id))
        record.flags = ("in_balance",) if result.in_balance else ("out_of_balance",)
        bound.info("shift_closed", shift_id=shift_id, in_balance=result.in_balance)
        answer = local_answer(request, family, Outcome.APPROVED)
        if family == "1993":
            return answer.with_fields({39: "500" if result.in_balance else "501"})
        return answer.with_fields({66: "1" if result.in_balance else "2"})

    # -- checks ----------------------------------------------------------------------

    async def _check_mac(
        self,
        ctx: ListenerContext,
        request: Message,
        terminal_id: str,
        bound: structlog.typing.FilteringBoundLogger,
    ) -> None:
        """Raise MacMismatch or MacKeySyncError unless the MAC verifies."""
        if terminal_id in self._locked:
            bound.warning("terminal_locked_mac_failures")
            raise MacKeySyncError(terminal_id)
        mac_hex = request.fields.get("128") or request.fields.get("64")
        raw = request.raw
        if mac_hex is None or raw is None:
            verdict = "mismatch"
        else:
            verdict = await self.keys.verify(terminal_id, mac_input(raw), bytes.fromhex(mac_hex))
        if verdict == "ok":
            self._mac_failures.pop(terminal_id, None)
            return
        self.metrics.mac_failures.labels(side="terminal").inc()
        if verdict == "key_sync":
            bound.warning("mac_key_sync_error")
            raise MacKeySyncError(terminal_id)
        failures = self._mac_failures.get(terminal_id, 0) + 1
        self._mac_failures[terminal_id] = failures
        bound.warning("mac_mismatch", failures=failures)
        if failures >= ctx.policy.mac_failures_before_lock:
            self._locked.add(terminal_id)
            bound.error("terminal_locked_until_key_change", failures=failures)
        raise MacMismatch(terminal_id)

    async def _answer_local(
        self, ctx: ListenerContext, request: Message, terminal_id: str, outcome: Outcome
    ) -> bytes:
        answer = local_answer(request, ctx.dialect.family, outcome)
        self._count_answer(answer)
        return await self._mac_answer(ctx, terminal_id, answer)

    async def _mac_answer(self, ctx: ListenerContext, terminal_id: str, answer: Message) -> bytes:
        if ctx.policy.mac_required:
            tak = await self.keys.answer_mac(terminal_id)
            if tak is not None:
                return encode_with_mac(ctx.dialect, answer, tak.generate)
        return encode(ctx.dialect, answer)

    # -- network management ------------------------------------------------------

    async def _network(
        self,
        ctx: ListenerContext,
        request: Message,
        terminal_id: str,
        function: NetworkFunction,
        bound: structlog.typing.FilteringBoundLogger,
    ) -> bytes:
        family = ctx.dialect.family
        accepted = code_for(Outcome.NETWORK_ACCEPTED, family)
        updates: dict[int, str | None] = {39: accepted}
        delivers_keys = function in (NetworkFunction.SIGN_ON, NetworkFunction.KEY_CHANGE)
        if delivers_keys:
            field, value = await self.keys.sign_on(terminal_id, family)
            updates[field] = value
            self._locked.discard(terminal_id)
            self._mac_failures.pop(terminal_id, None)
        if function is NetworkFunction.SIGN_ON and self.shifts.current(terminal_id) is None:
            shift_id = self.shifts.open(terminal_id)
            await self.journal.shift_open(terminal_id, shift_id)
        answer = local_answer(request, family, Outcome.NETWORK_ACCEPTED).with_fields(updates)
        encoded = encode(ctx.dialect, answer)
        if delivers_keys:
            await self.keys.delivered(terminal_id)
        self._count_answer(answer)
        bound.info("network_management", function=function.value)
        return encoded


def journal_amount(amount: str | None) -> int | None:
    return int(amount) if amount and amount.isdigit() else None
