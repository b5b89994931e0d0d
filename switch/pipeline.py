"""The per-message path from a terminal's frame to the answer it gets.

decode -> which flow? -> terminal known? -> MAC valid? -> signed on? -> field 7 recent?
-> duplicate? -> the flow (forward to an authoriser, queue for SAF, or answer locally)
-> journal -> MAC the answer -> answer.

The flow table names what each message class needs; this module enforces it and
owns what every flow shares (duplicates, in-flight count, the durable answer write).
Every failure is a typed error turned here into an action code and one log line.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

import structlog
from forecourt.codecs.action_codes import Outcome
from forecourt.codecs.dialect import decode, identify
from forecourt.codecs.errors import CodecError, DecodeError
from forecourt.codecs.fields import mask_pan
from forecourt.codecs.message import Message
from forecourt.codecs.mti import RequestKey, is_request, mti_class
from forecourt.codecs.payment_code import masked_payment_code
from forecourt.keys.errors import KeysError, UnknownOwner
from forecourt.keys.security_module import ModuleUnavailable
from forecourt.switch import transmission_time as field7
from forecourt.switch.answer_record import journal_answer
from forecourt.switch.answering import TerminalAnswers
from forecourt.switch.answers import local_answer
from forecourt.switch.authoriser import Authoriser
from forecourt.switch.context import (
    ListenerContext,
    PipelineSettings,
    Reply,
    SafWaker,
    TerminalKeys,
    TerminalPolicy,
)
from forecourt.switch.dukpt_terminals import KsnRefused
from forecourt.switch.flows.base import Flow, Job, Services
from forecourt.switch.flows.table import flow_for
from forecourt.switch.journal import Journal, JournalRow, new_txn_id
from forecourt.switch.matching import FinishedRequest, TerminalRequests
from forecourt.switch.metrics import SwitchMetrics
from forecourt.switch.repeated_warnings import RepeatedWarnings
from forecourt.switch.retransmission import Retransmissions
from forecourt.switch.routing import Router
from forecourt.switch.terminal_guard import (
    MacKeySyncError,
    MacMismatch,
    NotSignedOn,
    TerminalGuard,
    UnknownTerminal,
)
from forecourt.switch.terminals.metrics import TerminalMetrics
from forecourt.switch.terminals.roster import NoOperator, NotRegistered, TerminalRoster
from forecourt.switch.transaction import TxnRecord, pan_of
from forecourt.switch.undelivered import reverse_undelivered

__all__ = [
    "CloseConnection",
    "ListenerContext",
    "Pipeline",
    "PipelineSettings",
    "Reply",
    "TerminalPolicy",
]

log = structlog.get_logger("forecourt.pipeline")

# What a refusal before the flow is answered with, and the metric reason it counts as.
_REFUSALS: dict[type[Exception], tuple[Outcome, str]] = {
    UnknownTerminal: (Outcome.UNKNOWN_TERMINAL, "unknown_terminal"),
    MacMismatch: (Outcome.MAC_INCORRECT, "mac_mismatch"),
    MacKeySyncError: (Outcome.MAC_KEY_SYNC, "mac_key_sync"),
    NotSignedOn: (Outcome.NOT_SIGNED_ON, "not_signed_on"),
    field7.TransmissionTimeOutside: (Outcome.INVALID_TRANSACTION, "transmission_time"),
    field7.NoTransmissionTime: (Outcome.FORMAT_ERROR, "transmission_time_missing"),
    NoOperator: (Outcome.NOT_SIGNED_ON, "no_operator"),
    NotRegistered: (Outcome.UNKNOWN_TERMINAL, "not_registered"),
    KsnRefused: (Outcome.INVALID_TRANSACTION, "dukpt_ksn"),
}
_REFUSED = tuple(_REFUSALS)


class CloseConnection(Exception):
    """The frame cannot be answered (not even identified): the connection closes."""


class Pipeline:
    """Shared by every session of a switch process; owns the terminal-side state."""

    def __init__(
        self,
        *,
        router: Router,
        authorisers: Mapping[str, Authoriser],
        keys: TerminalKeys,
        journal: Journal,
        metrics: SwitchMetrics,
        node: str = "local",
        settings: PipelineSettings | None = None,
        saf: SafWaker | None = None,
        requests: TerminalRequests | None = None,
        guard: TerminalGuard | None = None,
    ) -> None:
        self.node = node
        self.authorisers = authorisers
        self.journal = journal
        self.metrics = metrics
        self.settings = settings or PipelineSettings()
        self.saf = saf
        self.requests = requests or TerminalRequests()
        self.guard = guard or TerminalGuard(keys, metrics, journal)
        self.answers = TerminalAnswers(keys, metrics)
        self.roster = TerminalRoster(journal, TerminalMetrics(metrics.registry))
        # refusals a terminal can repeat at will: one line per kind and interval
        self.warnings = RepeatedWarnings(log)
        self.services = Services(
            router=router,
            authorisers=authorisers,
            journal=journal,
            keys=keys,
            guard=self.guard,
            metrics=metrics,
            settings=self.settings,
            node=node,
            roster=self.roster,
        )
        longest = max((a.request_timeout_s for a in authorisers.values()), default=5.0)
        self.retransmissions = Retransmissions(
            self.requests, journal, self.answers, metrics, self.settings, longest
        )
        metrics.in_flight.set_function(lambda: self.requests.in_flight_count)

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
        self.metrics.message_counter("from_terminal", request.mti, "").inc()
        flow = flow_for(request)
        terminal_id = request.fields.get("41")
        stan = request.fields.get("11")
        if stan is None or (terminal_id is None and flow.rules.needs_terminal):
            self.metrics.malformed.labels(side="terminal", reason="no_41_or_11").inc()
            answer = local_answer(request, dialect.family, Outcome.FORMAT_ERROR)
            return Reply(self.answers.plain(dialect, answer))
        bound = log.bind(terminal_id=terminal_id, stan=stan, mti=request.mti, flow=flow.rules.name)
        try:
            reply = await self._checked(ctx, flow, request, terminal_id, stan, received, bound)
        except _REFUSED as exc:
            outcome, reason = _REFUSALS[type(exc)]
            self.metrics.rejections.labels(reason=reason).inc()
            answer = local_answer(request, dialect.family, outcome)
            self.warnings.warn(
                reason, terminal_id=terminal_id, stan=stan, mti=request.mti, listener=ctx.name
            )
            if isinstance(exc, UnknownTerminal) or terminal_id is None:
                return Reply(self.answers.plain(dialect, answer))
            self.answers.count(answer)
            return Reply(await self.answers.refusal(ctx, terminal_id, answer))
        except ModuleUnavailable as exc:
            # the security module cannot be reached in time: 909 / 96, unMAC'd (it
            # cannot MAC either), and nothing went upstream (docs/hsm.md)
            self.metrics.rejections.labels(reason="security_module_unavailable").inc()
            self.warnings.warn(
                "security_module_unavailable", terminal_id=terminal_id, stan=stan, code=exc.code
            )
            return Reply(
                self.answers.plain(
                    dialect, local_answer(request, dialect.family, Outcome.SYSTEM_MALFUNCTION)
                )
            )
        except KeysError as exc:
            # listed in the group but not in the key store, a key gone: this terminal only
            self.metrics.rejections.labels(reason="key_store").inc()
            self.warnings.warn(
                "key_store_refused", terminal_id=terminal_id, stan=stan, error=type(exc).__name__
            )
            unknown = isinstance(exc, UnknownOwner)
            outcome = Outcome.UNKNOWN_TERMINAL if unknown else Outcome.SYSTEM_MALFUNCTION
            return Reply(
                self.answers.plain(dialect, local_answer(request, dialect.family, outcome))
            )
        except (CloseConnection, CodecError):
            raise
        except Exception as exc:
            # a defect must cost this request, never the process or other terminals
            self.metrics.rejections.labels(reason="flow_failed").inc()
            bound.error("flow_failed", error=type(exc).__name__)
            answer = local_answer(request, dialect.family, Outcome.SYSTEM_MALFUNCTION)
            return Reply(self.answers.plain(dialect, answer))
        # a known terminal passed its checks: this frame keeps the connection open
        if reply is not None and terminal_id is not None and not reply.accepted:
            reply = reply.accepting()
        return reply

    def _undecodable(self, ctx: ListenerContext, payload: bytes, exc: DecodeError) -> bytes:
        self.metrics.malformed.labels(side="terminal", reason="decode").inc()
        mti, terminal_id, stan = identify(ctx.dialect, payload)
        try:
            answerable = mti is not None and is_request(mti)
        except CodecError:
            answerable = False
        if not answerable or mti is None or terminal_id is None or stan is None:
            self.warnings.warn(
                "undecodable_frame_closed", listener=ctx.name, field=exc.field, reason=exc.reason
            )
            raise CloseConnection(str(exc))
        self.warnings.warn(
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
        return self.answers.plain(ctx.dialect, answer)

    # -- requests ----------------------------------------------------------------

    async def _checked(
        self,
        ctx: ListenerContext,
        flow: Flow,
        request: Message,
        terminal_id: str | None,
        stan: str,
        received: float,
        bound: structlog.typing.FilteringBoundLogger,
    ) -> Reply | None:
        """The flow's declared checks, then the flow."""
        rules = flow.rules
        if terminal_id is not None:
            self.guard.check_known(ctx.policy, terminal_id)
            if rules.proof is not None:
                await self.guard.check_mac(ctx.policy, request, terminal_id, bound, rules.proof)
            elif rules.needs_mac and ctx.policy.mac_required:
                await self.guard.check_mac(ctx.policy, request, terminal_id, bound)
            if rules.needs_signed_on:
                self.guard.check_signed_on(terminal_id)
            if not rules.before_registration:  # a cashier where required; registered
                self.roster.check(request, terminal_id, ctx.policy.require_operator)
            if rules.checks_transmission_time:
                field7.check_transmission_time(request, ctx.policy.transmission_tolerance_s, bound)
            if rules.needs_shift and await self.journal.open_shift(terminal_id) is None:
                bound.warning("no_open_shift")
                answer = local_answer(request, ctx.dialect.family, Outcome.DECLINED)
                self.answers.count(answer)
                return Reply(await self.answers.maced(ctx, terminal_id, answer))
        if not rules.journalled or terminal_id is None:
            answer = await flow.run(Job(ctx, request, None, bound, self.services))
            if rules.mac_answer and terminal_id is not None:
                self.answers.count(answer)
                return Reply(await self.answers.maced(ctx, terminal_id, answer))
            return Reply(self.answers.plain(ctx.dialect, answer))
        return await self._transaction(ctx, flow, request, terminal_id, stan, received, bound)

    async def _transaction(
        self,
        ctx: ListenerContext,
        flow: Flow,
        request: Message,
        terminal_id: str,
        stan: str,
        received: float,
        bound: structlog.typing.FilteringBoundLogger,
    ) -> Reply | None:
        key = RequestKey(mti_class(request.mti), terminal_id, stan)
        amount = request.fields.get("4")
        replay = await self.retransmissions.answer_for(ctx, key, amount, request, bound)
        if replay is not None:
            return Reply(replay)
        if self.requests.in_flight_of(terminal_id) >= ctx.policy.max_in_flight:
            self.warnings.warn("terminal_in_flight_cap", terminal_id=terminal_id, stan=stan)
            return Reply(
                await self.answers.local(ctx, request, terminal_id, Outcome.ISSUER_UNAVAILABLE)
            )
        pan = pan_of(request)
        record = TxnRecord(
            txn_id=new_txn_id(),
            terminal_id=terminal_id,
            stan=stan,
            mti_class=key.mti_class,
            request_mti=request.mti,
            masked_pan=mask_pan(pan) if pan else masked_payment_code(request),
            amount=amount,
            processing_code=request.fields.get("3"),
            received_at=time.time(),
            currency=request.fields.get("49"),
            reversible=flow.rules.parks_reversal,
            operator_id=self.roster.operator_of(terminal_id),
        )
        self.requests.begin(key, record.txn_id, amount)
        answer: Message | None = None
        replied = False
        try:
            bound = bound.bind(txn_id=record.txn_id)
            answer = await flow.run(Job(ctx, request, record, bound, self.services))
            payload = await self.answers.maced(ctx, terminal_id, answer)
            record.answer_raw = payload  # the bytes sent (MAC included): no second encode
            record.response_mti = answer.mti
            record.action_code = answer.fields.get("39")
            record.answered_at = time.time()
            total = time.perf_counter() - received
            host_s = (record.host_ms or 0.0) / 1000.0
            record.switch_ms = (total - host_s) * 1000.0
            await journal_answer(self.journal, self.node, record, answer)
            if self.saf is not None and record.pending_ops:
                self.saf.wake()
            self.metrics.switch_latency.observe(total - host_s)
            self.answers.count(answer)
            bound.info(
                "transaction",
                route=record.route,
                action_code=record.action_code,
                state=record.state,
                switch_ms=round(record.switch_ms, 3),
                host_ms=None if record.host_ms is None else round(record.host_ms, 3),
            )
            replied = True
            return Reply(payload, record, answer, accepted=True)
        finally:
            if not replied:
                self.requests.finish(key, answer, journalled=False)

    def remember(self, key: RequestKey, row: JournalRow) -> FinishedRequest | None:
        """Put a journalled outcome into the duplicate window (recovery warms it)."""
        return self.retransmissions.remember(key, row)

    # -- after the answer --------------------------------------------------------

    def settle(self, reply: Reply) -> None:
        """The session delivered `reply`, or journalled why not: copies may hear it now.

        Not sooner: a retransmission (waiting for this answer, or coming later) must
        not hear an approval that `undelivered` is reversing; once its write is
        durable, the retransmission sees the reversal in the journal.
        """
        record = reply.record
        if record is not None:
            # a Reply with a record is returned only once its answer is journalled
            self.requests.finish(
                RequestKey(record.mti_class, record.terminal_id, record.stan),
                reply.answer,
                journalled=True,
            )

    async def undelivered(self, record: TxnRecord) -> None:
        """The terminal went before it heard an approval: reverse it (reason 4020)."""
        await reverse_undelivered(
            record,
            settings=self.settings,
            authorisers=self.authorisers,
            journal=self.journal,
            saf=self.saf,
        )
