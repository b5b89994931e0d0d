"""Acquirer host simulator: an ISO 8583 host that answers by rules.

The reference host for tests, certification and benchmarks. This module is
the server: connections, the per-message path and deferred answers. Its
per-message path is kept lean: one decode, a rule scan (`rules`), one encode
(`acquirer_answers`), and all the answers a read produced go out in one send
(pipelined requests cost one syscall, not one each). Nothing is logged per
message; what reached the host is recorded in memory (`acquirer_record`) for
tests to assert. The configuration is in `acquirer_config`, the MAC keys in
`acquirer_keys`.
"""

from __future__ import annotations

import contextlib
import itertools
import ssl

import structlog
import trio
from forecourt.codecs.dialect import decode
from forecourt.codecs.errors import CodecError, DecodeError
from forecourt.codecs.framing import FrameDecoder, encode_frame, reply_tpdu
from forecourt.codecs.message import Message
from forecourt.codecs.mti import is_request

from .acquirer_answers import AnswerBuilder
from .acquirer_config import (
    AcquirerConfig,
    load_acquirer_config,
    parse_acquirer_config,
    simple_config,
)
from .acquirer_keys import HostKeys
from .acquirer_record import ReceivedLog, ReceivedRecord
from .acquirer_settlement import SettlementBook
from .acquirer_tls import TlsSession, host_context, session_of
from .acquirer_totals import HostTotals
from .pins import HostPins
from .rules import Decision, HostLogic

__all__ = [
    "AcquirerConfig",
    "AcquirerSimulator",
    "ReceivedRecord",
    "load_acquirer_config",
    "parse_acquirer_config",
    "simple_config",
]

log = structlog.get_logger("forecourt.sim.acquirer")


class _CloseConnection(Exception):
    """A rule said to close the connection, or a request cannot be answered at all."""


class _Connection:
    """One accepted connection: its stream, a send lock and its late-answer tasks."""

    def __init__(self, number: int, stream: trio.abc.Stream, nursery: trio.Nursery) -> None:
        self.number = number
        self.stream = stream
        self.nursery = nursery
        self.send_lock = trio.Lock()

    async def send(self, data: bytes) -> None:
        async with self.send_lock:
            await self.stream.send_all(data)


class AcquirerSimulator:
    """A simulated acquirer host.

    Start it in a nursery with `port = await nursery.start(sim.run)`; it serves
    until cancelled. `.received` holds what reached it (newest last, at most
    `keep_records` of them; the counts cover everything).
    """

    def __init__(self, config: AcquirerConfig) -> None:
        self.config = config
        self.wire = config.wire
        self.logic = HostLogic(
            config.wire.family,
            config.rules,
            config.seed,
            pin_holds=HostPins(config.zpk).holds,
        )
        self.keys = HostKeys(config.wire.family, config.zak, config.kek, config.verify_mac)
        self.answers = AnswerBuilder(
            config.wire.dialect, self.logic, self.keys, config.generate_mac
        )
        self.log = ReceivedLog(config.keep_records, config.record_file)
        self.totals = HostTotals(self.logic, config.totals_day)  # what it approved, per day
        logic = self.logic  # what it settled, for its settlement file
        self.settlement = SettlementBook(
            logic.code("approved"), logic.code("reversal_accepted"), lost=self._lost
        )
        self.answers.on_answer = self.settlement.note
        self.port: int | None = None
        self.connections_accepted = 0
        self.open_connections = 0
        self._numbers = itertools.count(1)
        self._mac_code = self.logic.code("mac_incorrect")
        # TLS: the context built once; what each handshake agreed on, and refusals
        self._ssl: ssl.SSLContext | None = host_context(config.tls) if config.tls else None
        self.tls_sessions: list[TlsSession] = []
        self.tls_refused = 0

    def _lost(self, request: Message) -> bool:
        """The `lose` rule matched: approved, and never settled (the host lost it)."""
        rule = self.logic.first_match(request)
        return rule is not None and rule.action == "lose"

    # -- counts -----------------------------------------------------------------------

    @property
    def received(self) -> list[ReceivedRecord]:
        """What reached the host, newest last (trimmed to about `keep_records`)."""
        return self.log.records

    @property
    def total(self) -> int:
        """Messages received (all of them, including those no longer in `.received`)."""
        return self.log.total

    def counts_by_mti(self) -> dict[str, int]:
        return dict(self.log.by_mti)

    def counts_by_action_code(self) -> dict[str, int]:
        """Answers sent by action code; "none" for messages left unanswered."""
        return dict(self.log.by_code)

    def count(
        self,
        mti: str | None = None,
        action_code: str | None = None,
        terminal_id: str | None = None,
        delivery: str | None = None,
    ) -> int:
        """Records in `.received` that match every criterion given."""
        return self.log.count(mti, action_code, terminal_id, delivery)

    async def wait_received(self, n: int, mti: str | None = None, timeout: float = 5.0) -> None:
        """Wait until `n` matching records are in `.received` (raises trio.TooSlowError)."""
        with trio.fail_after(timeout):
            while self.count(mti=mti) < n:
                await trio.sleep(0.005)

    # -- serving ----------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        """Listen, report the bound port through `task_status`, serve until cancelled."""
        listeners = await trio.open_tcp_listeners(self.config.port, host=self.config.host)
        self.port = int(listeners[0].socket.getsockname()[1])
        self.log.open()
        try:
            async with trio.open_nursery() as nursery:
                if self.log.writes_file:
                    nursery.start_soon(self._flush_records)
                await nursery.start(trio.serve_listeners, self._serve, listeners)
                log.info("acquirer_simulator_listening", host=self.config.host, port=self.port)
                task_status.started(self.port)
        finally:
            self.log.close()

    async def _flush_records(self) -> None:
        while True:
            await trio.sleep(0.2)
            self.log.flush()

    async def _secure(self, stream: trio.SocketStream) -> trio.abc.Stream | None:
        """The stream as served: TLS once the handshake is done; None when it failed."""
        if self._ssl is None:
            return stream
        secured = trio.SSLStream(stream, self._ssl, server_side=True)
        try:
            with trio.fail_after(10):
                await secured.do_handshake()
        except (trio.BrokenResourceError, trio.TooSlowError, OSError):
            self.tls_refused += 1
            return None
        self.tls_sessions.append(session_of(secured))
        return secured

    async def _serve(self, raw: trio.SocketStream) -> None:
        number = next(self._numbers)
        self.connections_accepted += 1
        self.open_connections += 1
        stream: trio.abc.Stream = raw
        try:
            secured = await self._secure(raw)
            if secured is None:
                return
            stream = secured
            async with trio.open_nursery() as nursery:
                connection = _Connection(number, stream, nursery)
                try:
                    await self._read_loop(connection)
                except _CloseConnection:
                    pass
                except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                    pass
                nursery.cancel_scope.cancel()
        finally:
            self.open_connections -= 1
            with trio.CancelScope(shield=True):
                await trio.aclose_forcefully(stream)

    async def _read_loop(self, connection: _Connection) -> None:
        decoder = FrameDecoder(self.wire.framing)
        stream = connection.stream
        while True:
            data = await stream.receive_some(65536)
            if not data:
                return
            try:
                frames = decoder.feed(data)
            except CodecError:
                return  # oversize or garbled header: the stream cannot be resynchronised
            out: list[bytes] = []
            for frame in frames:
                tpdu = reply_tpdu(frame.tpdu) if frame.tpdu is not None else None
                answer = self._handle(connection, frame.payload, tpdu)
                if answer is not None:
                    out.append(answer)
            if out:
                await connection.send(b"".join(out) if len(out) > 1 else out[0])

    # -- one message ------------------------------------------------------------------

    def _handle(self, connection: _Connection, payload: bytes, tpdu: bytes | None) -> bytes | None:
        """The framed immediate answer to one frame, or None (dropped, deferred, not a request).

        Deferred answers (delay, late) are started in the connection's nursery, so
        they die with the connection.
        """
        framing = self.wire.framing
        record = self.log.record
        number = connection.number
        try:
            request = decode(self.wire.dialect, payload)
        except DecodeError:
            return encode_frame(framing, self._undecodable(connection, payload), tpdu)
        if not is_request(request.mti):
            record(number, request, None, "not_a_request", None, None)
            return None
        mac_state = self.keys.check(request, payload)
        if self.keys.refuses(mac_state):
            answer = self.answers.answer(request, Decision("answer", self._mac_code), refused=True)
            record(number, request, self._mac_code, "answer", None, mac_state)
            return encode_frame(framing, answer, tpdu)

        reversals_before = self.logic.reversals_applied
        decision = self.logic.decide(request)
        delivery = decision.delivery
        if delivery == "close":
            record(number, request, None, "close", decision.rule, mac_state)
            raise _CloseConnection
        if delivery == "drop":
            record(number, request, None, "drop", decision.rule, mac_state)
            return None
        decision, totals_fields = self.totals.settle(request, decision, reversals_before)
        answer = self.answers.answer(request, decision, totals_fields)
        record(
            number,
            request,
            decision.code,
            delivery,
            decision.rule,
            mac_state,
        )
        framed = encode_frame(framing, answer, tpdu)
        if delivery == "twice":
            framed += framed
        if decision.delay_s > 0:
            connection.nursery.start_soon(self._send_later, connection, framed, decision.delay_s)
            return None
        return framed

    def _undecodable(self, connection: _Connection, payload: bytes) -> bytes:
        answer, mti, terminal_id, stan = self.answers.undecodable(payload)
        code = self.answers.format_code if mti and stan else None
        self.log.record_undecodable(connection.number, mti, stan, terminal_id, code)
        if answer is None:
            raise _CloseConnection
        return answer

    async def _send_later(self, connection: _Connection, framed: bytes, delay: float) -> None:
        await trio.sleep(delay)
        # The switch may have hung up before the late answer: nothing to deliver then.
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            await connection.send(framed)
