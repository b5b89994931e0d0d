"""One terminal connection: read frames, process each in its own task, write answers.

Requests on one connection are pipelined: each frame is handled by its own task in
the session's nursery, so a slow host answer never holds up the next request, up
to `max_in_flight_per_connection`; beyond it the reader stops reading (the
terminal's TCP window fills: back-pressure, no queue and no 912) until one is
answered.

A connection holds one of its listener's slots, so it must earn it: it has
`first_frame_timeout_s` to get a frame accepted (answered for a known terminal:
`Reply.accepted`), then each accepted frame pushes the idle deadline back by
`idle_timeout_s`. Refused frames, format errors and partial frames do not push it:
a connection that is silent, trickles bytes (slowloris) or sends only refused
frames is closed. A connection with a request in hand is not silent: at its
deadline it stops reading and waits for those answers, an accepted one reopens it.

The reader also stops on end of stream, an oversize length, an unidentifiable frame
or the switch draining; requests already in progress still finish and are answered
if the connection is still there.
"""

from __future__ import annotations

import contextlib
import math

import structlog
import trio
from forecourt.codecs.errors import CodecError, FrameTooLarge
from forecourt.codecs.framing import Frame, FrameDecoder, Framing, encode_frame, reply_tpdu
from forecourt.switch.admission import ConnectionLog, SessionLimits
from forecourt.switch.context import ListenerContext
from forecourt.switch.direct_write import FrameWriter
from forecourt.switch.metrics import SwitchMetrics
from forecourt.switch.pipeline import CloseConnection, Pipeline

log = structlog.get_logger("forecourt.session")

_READ_SIZE = 65536


class TerminalSession:
    def __init__(
        self,
        stream: trio.abc.Stream,
        ctx: ListenerContext,
        framing: Framing,
        pipeline: Pipeline,
        metrics: SwitchMetrics,
        limits: SessionLimits,
        peer: str,
        events: ConnectionLog,
    ) -> None:
        self._stream = stream
        self._ctx = ctx
        self._framing = framing
        self._pipeline = pipeline
        self._metrics = metrics
        self._events = events
        idle = limits.idle_timeout_s if limits.idle_timeout_s > 0 else math.inf
        first = limits.first_frame_timeout_s if limits.first_frame_timeout_s > 0 else math.inf
        self._idle_timeout_s = idle
        self._first_frame_timeout_s = min(first, idle)
        # the deadline moves in steps, not at every frame: setting a cancel scope's
        # deadline per transaction is a measurable cost
        self._step = min(1.0, idle / 10)
        self._max_in_flight = limits.max_in_flight
        self._peer = peer
        self._writer = FrameWriter(stream)
        self._reader_scope = trio.CancelScope()
        self._deadline_scope = trio.CancelScope()  # the reader's, replaced in _read
        self._deadline = math.inf
        self._accepted = False  # a frame of this connection was accepted
        self._in_flight = 0
        self._settled: trio.Event | None = None  # set when a request ends and the reader waits
        self._open = True

    def stop_reading(self) -> None:
        """Used when the switch drains: take no new request, finish the ones in hand."""
        self._reader_scope.cancel()

    async def run(self) -> None:
        try:
            async with trio.open_nursery() as nursery:
                with self._reader_scope:
                    await self._read(nursery)
        finally:
            self._open = False
            self._writer.close()
            with (
                trio.CancelScope(shield=True),
                contextlib.suppress(trio.BrokenResourceError, OSError),
            ):
                await self._stream.aclose()

    async def _read(self, nursery: trio.Nursery) -> None:
        decoder = FrameDecoder(self._framing)
        backlog: list[Frame] = []  # cut from the stream, held back by the in-flight cap
        self._deadline = trio.current_time() + self._first_frame_timeout_s
        while True:
            with trio.CancelScope(deadline=self._deadline) as scope:
                self._deadline_scope = scope
                await self._read_frames(decoder, backlog, nursery)
                return
            # The deadline passed. Requests in hand are not silence: wait for their
            # answers (each bounded by its request timeout) without reading more.
            while self._in_flight:
                await self._wait_settled()
            if self._deadline <= trio.current_time():
                break  # none of them was accepted
        if self._accepted:
            log.info("idle_timeout_closed", peer=self._peer, buffered=decoder.buffered)
            self._metrics.idle_closed.inc()
        else:
            self._events.closed("first_frame_timeout")

    async def _read_frames(
        self, decoder: FrameDecoder, backlog: list[Frame], nursery: trio.Nursery
    ) -> None:
        while True:
            if backlog:
                await self._start_held_back(backlog, nursery)
            try:
                data = await self._stream.receive_some(_READ_SIZE)
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                return
            if not data:
                # terminals do not half-close: the terminal is gone, and an answer
                # written now would only reach its kernel, not the terminal
                self._open = False
                return
            try:
                frames = decoder.feed(data)
            except FrameTooLarge as exc:
                self._metrics.malformed.labels(side="terminal", reason="frame_too_large").inc()
                log.warning(
                    "frame_too_large_closed",
                    peer=self._peer,
                    length=exc.length,
                    maximum=exc.maximum,
                )
                return
            except CodecError as exc:
                self._metrics.malformed.labels(side="terminal", reason="bad_length").inc()
                log.warning("bad_length_header_closed", peer=self._peer, error=str(exc))
                return
            if self._in_flight + len(frames) <= self._max_in_flight:
                self._in_flight += len(frames)
                for frame in frames:
                    nursery.start_soon(self._process, frame)
            else:
                backlog.extend(frames)

    async def _start_held_back(self, backlog: list[Frame], nursery: trio.Nursery) -> None:
        """Start the frames over the in-flight cap as answers free slots; read nothing."""
        if self._in_flight >= self._max_in_flight:
            self._metrics.reads_paused.labels(listener=self._ctx.name).inc()
        while backlog:
            while self._in_flight >= self._max_in_flight:
                await self._wait_settled()
            self._in_flight += 1
            nursery.start_soon(self._process, backlog.pop(0))

    async def _wait_settled(self) -> None:
        settled = self._settled = trio.Event()
        await settled.wait()

    def _keep_open(self) -> None:
        """An accepted frame: the connection may stay another idle timeout."""
        self._accepted = True
        deadline = trio.current_time() + self._idle_timeout_s
        if deadline - self._deadline >= self._step:
            self._deadline = deadline
            self._deadline_scope.deadline = deadline

    async def _process(self, frame: Frame) -> None:
        try:
            try:
                reply = await self._pipeline.handle(self._ctx, frame.payload)
            except CloseConnection:
                self._reader_scope.cancel()
                return
            if reply is None:
                return
            if reply.accepted:
                self._keep_open()
            tpdu = reply_tpdu(frame.tpdu) if frame.tpdu is not None else None
            try:
                delivered = await self.send(encode_frame(self._framing, reply.payload, tpdu))
                if not delivered and reply.record is not None:
                    await self._pipeline.undelivered(reply.record)
            finally:
                # only now may a retransmission of the request hear the answer
                self._pipeline.settle(reply)
        finally:
            self._in_flight -= 1
            if self._settled is not None:
                self._settled.set()
                self._settled = None

    async def send(self, data: bytes) -> bool:
        """False when the terminal is gone and the answer was not delivered."""
        if not self._open:
            return False
        try:
            await self._writer.send(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            self._open = False
            self._reader_scope.cancel()
            return False
        return True
