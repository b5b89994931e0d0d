"""The per-message path from a terminal's frame to the answer it gets.

decode -> terminal known? -> MAC valid? -> duplicate? -> route -> journal ->
forward -> await the match or the timeout -> journal -> MAC the answer -> answer.

Every failure is a typed error caught here and turned into an action code and one
log line; nothing a terminal sends can stop the switch.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Protocol

import attrs
import structlog
from forecourt.codecs.action_codes import Outcome, is_approved
from forecourt.codecs.dialect import Dialect, decode, encode, encode_with_mac, identify, mac_input
from forecourt.codecs.errors import DecodeError
from forecourt.codecs.fields import mask_pan
from forecourt.codecs.message import Message
from forecourt.codecs.mti import is_request, mti_class
from forecourt.codecs.network import NetworkFunction, network_function
from forecourt.switch.acquirer_link import AcquirerLink, HostTimeout, LinkBusy, LinkError
from forecourt.switch.answers import local_answer, relay_answer
from forecourt.switch.journal import Journal, JournalRow, new_txn_id
from forecourt.switch.matching import TerminalKey, TerminalRequests
from forecourt.switch.metrics import SwitchMetrics
from forecourt.switch.routing import NoRoute, Router
from forecourt.switch.translate import across_families

log = structlog.get_logger("forecourt.pipeline")


class CloseConnection(Exception):
    """The frame cannot be answered (not even identified): the connection closes."""


class UnknownTerminal(Exception):
    """The terminal is not in its group or not registered: declined."""


class MacMismatch(Exception):
    """The MAC does not verify under any acceptable TAK: 916 / A0."""


class MacKeySyncError(Exception):
    """No acceptable TAK (expired, retired, or locked after failures): 917."""


class TerminalKeys(Protocol):
    """What the pipeline needs of the key store, per terminal (see switch/terminal_keys)."""

    def is_known(self, terminal_id: str) -> bool: ...

    async def verify(self, terminal_id: str, data: bytes, mac: bytes) -> str:
        """ "ok", "mismatch" or "key_sync"."""
        ...

    async def answer_mac(self, terminal_id: str) -> MacGenerator | None: ...

    async def sign_on(self, terminal_id: str, family: str) -> tuple[int, str]:
        """Rotate the terminal's working keys; the (field, value) that delivers them."""
        ...

    async def delivered(self, terminal_id: str) -> None: ...


class MacGenerator(Protocol):
    def generate(self, data: bytes) -> bytes: ...


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


@attrs.define
class TxnRecord:
    """One transaction as the journal sees it; never a full PAN."""

    txn_id: str
    terminal_id: str
    stan: str
    mti_class: str
    request_mti: str
    masked_pan: str | None
    amount: str | None
    processing_code: str | None
    received_at: float
    currency: str | None = None
    state: str = "received"
    forwarded_at: float | None = None
    route: str | None = None
    acquirer_stan: str | None = None
    response_mti: str | None = None
    action_code: str | None = None
    approved_amount: str | None = None
    answered_at: float | None = None
    host_ms: float | None = None
    switch_ms: float | None = None
    answer_raw: bytes | None = None
    original_txn_id: str | None = None


def _minor(amount: str | None) -> int | None:
    return int(amount) if amount and amount.isdigit() else None


def journal_row(record: TxnRecord, node: str) -> JournalRow:
    """The row the journal stores for a transaction that is about to go upstream."""
    return JournalRow(
        txn_id=record.txn_id,
        node=node,
        terminal_id=record.terminal_id,
        stan=record.stan,
        mti_class=record.mti_class,
        request_mti=record.request_mti,
        received_at=record.received_at,
        state=record.state,
        amount=_minor(record.amount),
        currency=record.currency,
        masked_pan=record.masked_pan,
        processing_code=record.processing_code,
        route=record.route,
        acquirer_stan=record.acquirer_stan,
        original_txn_id=record.original_txn_id,
        forwarded_at=record.forwarded_at,
        response_mti=record.response_mti,
        action_code=record.action_code,
        approved_amount=_minor(record.approved_amount),
        answered_at=record.answered_at,
        host_ms=record.host_ms,
        switch_ms=record.switch_ms,
        response_raw=record.answer_raw,
    )


def _pan_of(message: Message) -> str | None:
    pan = message.fields.get("2")
    if pan:
        return pan
    track = message.fields.get("35")
    if track:
        for sep in ("=", "D", "d"):
            if sep in track:
                return track.split(sep, 1)[0]
    return None


class Pipeline:
    """Shared by every session of a switch process; owns the terminal-side state."""

    def __init__(
        self,
        *,
        router: Router,
        links: Mapping[str, AcquirerLink],
        keys: TerminalKeys,
        journal: Journal,
        metrics: SwitchMetrics,
        node: str = "local",
        requests: TerminalRequests | None = None,
    ) -> None:
        self.node = node
        self.router = router
        self.links = links
        self.keys = keys
        self.journal = journal
        self.metrics = metrics
        self.requests = requests or TerminalRequests()
        self._mac_failures: dict[str, int] = {}
        self._locked: set[str] = set()
        self._per_terminal: dict[str, int] = {}

    # -- entry -----------------------------------------------------------------

    async def handle(self, ctx: ListenerContext, payload: bytes) -> bytes | None:
        """The encoded answer to one frame, or None when nothing is to be sent.

        Raises CloseConnection when the frame cannot even be identified.
        """
        received = time.perf_counter()
        dialect = ctx.dialect
        try:
            request = decode(dialect, payload)
        except DecodeError as exc:
            return self._undecodable(ctx, payload, exc)
        if not is_request(request.mti):
            self.metrics.malformed.labels(side="terminal", reason="not_a_request").inc()
            log.warning("terminal_sent_non_request", mti=request.mti, listener=ctx.name)
            return None
        terminal_id = request.fields.get("41")
        stan = request.fields.get("11")
        if terminal_id is None or stan is None:
            self.metrics.malformed.labels(side="terminal", reason="no_41_or_11").inc()
            return self._encode_plain(
                dialect, local_answer(request, dialect.family, Outcome.FORMAT_ERROR)
            )
        bound = log.bind(terminal_id=terminal_id, stan=stan, mti=request.mti)
        try:
            return await self._handle_request(ctx, request, terminal_id, stan, received, bound)
        except UnknownTerminal:
            self.metrics.rejections.labels(reason="unknown_terminal").inc()
            bound.warning("unknown_terminal")
            return self._encode_plain(
                dialect, local_answer(request, dialect.family, Outcome.UNKNOWN_TERMINAL)
            )
        except MacMismatch:
            self.metrics.rejections.labels(reason="mac_mismatch").inc()
            return await self._answer_local(ctx, request, terminal_id, Outcome.MAC_INCORRECT)
        except MacKeySyncError:
            self.metrics.rejections.labels(reason="mac_key_sync").inc()
            return await self._answer_local(ctx, request, terminal_id, Outcome.MAC_KEY_SYNC)

    def _undecodable(self, ctx: ListenerContext, payload: bytes, exc: DecodeError) -> bytes:
        self.metrics.malformed.labels(side="terminal", reason="decode").inc()
        mti, terminal_id, stan = identify(ctx.dialect, payload)
        if mti is None or terminal_id is None or stan is None or not is_request(mti):
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
        self.metrics.messages.labels(
            direction="to_terminal", mti=answer.mti, action_code=answer.fields.get("39", "")
        ).inc()
        return encode(dialect, answer)

    # -- requests ----------------------------------------------------------------

    async def _handle_request(
        self,
        ctx: ListenerContext,
        request: Message,
        terminal_id: str,
        stan: str,
        received: float,
        bound: structlog.typing.FilteringBoundLogger,
    ) -> bytes | None:
        policy = ctx.policy
        if policy.terminals is not None:
            if terminal_id not in policy.terminals:
                raise UnknownTerminal(terminal_id)
        elif not self.keys.is_known(terminal_id):
            raise UnknownTerminal(terminal_id)

        function = network_function(request)
        if function is not None:
            return await self._network(ctx, request, terminal_id, function, bound)

        if policy.mac_required:
            await self._check_mac(ctx, request, terminal_id, bound)

        key: TerminalKey = (mti_class(request.mti), terminal_id, stan)
        amount = request.fields.get("4")
        replay = await self._duplicate(ctx, key, amount, request, bound)
        if replay is not None:
            return replay

        if self._per_terminal.get(terminal_id, 0) >= policy.max_in_flight:
            bound.warning("terminal_in_flight_cap")
            return await self._answer_local(ctx, request, terminal_id, Outcome.ISSUER_UNAVAILABLE)

        txn_id = new_txn_id()
        pan = _pan_of(request)
        record = TxnRecord(
            txn_id=txn_id,
            terminal_id=terminal_id,
            stan=stan,
            mti_class=key[0],
            request_mti=request.mti,
            masked_pan=mask_pan(pan) if pan else None,
            amount=amount,
            processing_code=request.fields.get("3"),
            received_at=time.time(),
            currency=request.fields.get("49"),
        )
        entry = self.requests.begin(key, txn_id, amount)
        self._per_terminal[terminal_id] = self._per_terminal.get(terminal_id, 0) + 1
        self.metrics.in_flight.inc()
        answer_message: Message | None = None
        try:
            answer_message = await self._forward(ctx, request, record, bound)
            answer_bytes = await self._mac_answer(ctx, terminal_id, answer_message)
            record.answer_raw = encode(ctx.dialect, answer_message)
            record.response_mti = answer_message.mti
            record.action_code = answer_message.fields.get("39")
            record.answered_at = time.time()
            total = time.perf_counter() - received
            host_s = (record.host_ms or 0.0) / 1000.0
            record.switch_ms = (total - host_s) * 1000.0
            await self._journal_answer(record)
            self.metrics.switch_latency.observe(total - host_s)
            self.metrics.messages.labels(
                direction="to_terminal",
                mti=answer_message.mti,
                action_code=record.action_code or "",
            ).inc()
            bound.info(
                "transaction",
                txn_id=txn_id,
                route=record.route,
                action_code=record.action_code,
                state=record.state,
                switch_ms=round(record.switch_ms, 3),
                host_ms=None if record.host_ms is None else round(record.host_ms, 3),
            )
            return answer_bytes
        finally:
            self.requests.finish(key, answer_message)
            self.metrics.in_flight.dec()
            remaining = self._per_terminal.get(terminal_id, 1) - 1
            if remaining:
                self._per_terminal[terminal_id] = remaining
            else:
                self._per_terminal.pop(terminal_id, None)
            del entry

    async def _journal_answer(self, record: TxnRecord) -> None:
        """One durable write before the terminal hears the answer."""
        if record.forwarded_at is None:
            await self.journal.record_received(journal_row(record, self.node))
            return
        await self.journal.update(
            record.txn_id,
            state=record.state,
            response_mti=record.response_mti,
            action_code=record.action_code,
            approved_amount=_minor(record.approved_amount),
            answered_at=record.answered_at,
            host_ms=record.host_ms,
            switch_ms=record.switch_ms,
            response_raw=record.answer_raw,
        )

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
                return await self._mac_answer(ctx, key[1], entry.answer)
            return await self._answer_local(ctx, request, key[1], Outcome.DUPLICATE)
        finished = self.requests.finished(key)
        if finished is None:
            return None
        self.metrics.duplicates.labels(kind="retransmission").inc()
        if finished.amount != amount:
            bound.warning("duplicate_different_amount", txn_id=finished.txn_id)
            return await self._answer_local(ctx, request, key[1], Outcome.DUPLICATE)
        bound.info("retransmission_replayed", txn_id=finished.txn_id)
        return await self._mac_answer(ctx, key[1], finished.answer)

    async def _forward(
        self,
        ctx: ListenerContext,
        request: Message,
        record: TxnRecord,
        bound: structlog.typing.FilteringBoundLogger,
    ) -> Message:
        family = ctx.dialect.family
        try:
            route = self.router.route(_pan_of(request) or "")
        except NoRoute:
            record.state = "declined"
            bound.warning("no_route")
            return local_answer(request, family, Outcome.DECLINED)
        record.route = route
        link = self.links.get(route)
        if link is None or not link.connected:
            record.state = "declined"
            bound.warning("route_unavailable", route=route)
            return local_answer(request, family, Outcome.ISSUER_UNAVAILABLE)
        host_family = link.settings.dialect.family
        upstream = across_families(request.with_fields({64: None, 128: None}), family, host_family)

        async def journal_before_send(link_stan: str) -> None:
            record.acquirer_stan = link_stan
            record.state = "forwarded"
            record.forwarded_at = time.time()
            await self.journal.record_received(journal_row(record, self.node))

        try:
            answer = await link.exchange(upstream, before_send=journal_before_send)
        except HostTimeout:
            record.state = "timed_out"
            self.metrics.host_timeouts.labels(link=route).inc()
            bound.warning("host_timeout", route=route, txn_id=record.txn_id)
            return local_answer(request, family, Outcome.ISSUER_TIMEOUT)
        except LinkBusy:
            record.state = "declined"
            bound.warning("link_busy", route=route)
            return local_answer(request, family, Outcome.ISSUER_UNAVAILABLE)
        except LinkError:
            record.state = "declined"
            bound.warning("link_unavailable", route=route)
            return local_answer(request, family, Outcome.ISSUER_UNAVAILABLE)
        record.host_ms = answer.host_seconds * 1000.0
        self.metrics.host_latency.labels(link=route).observe(answer.host_seconds)
        relayed = relay_answer(
            request, across_families(answer.message, host_family, family), family, host_family
        )
        code = relayed.fields.get("39", "")
        record.state = "approved" if is_approved(code, family) else "declined"
        record.approved_amount = relayed.fields.get("4") if record.state == "approved" else None
        return relayed

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
        self.metrics.messages.labels(
            direction="to_terminal", mti=answer.mti, action_code=answer.fields.get("39", "")
        ).inc()
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
        approved = "800" if family == "1993" else "00"
        answer = local_answer(request, family, Outcome.APPROVED)
        updates: dict[int, str | None] = {39: approved}
        if function in (NetworkFunction.SIGN_ON, NetworkFunction.KEY_CHANGE):
            field, value = await self.keys.sign_on(terminal_id, family)
            updates[field] = value
            self._locked.discard(terminal_id)
            self._mac_failures.pop(terminal_id, None)
        answer = answer.with_fields(updates)
        encoded = encode(ctx.dialect, answer)
        if function in (NetworkFunction.SIGN_ON, NetworkFunction.KEY_CHANGE):
            await self.keys.delivered(terminal_id)
        self.metrics.messages.labels(
            direction="to_terminal", mti=answer.mti, action_code=approved
        ).inc()
        bound.info("network_management", function=function.value)
        return encoded
