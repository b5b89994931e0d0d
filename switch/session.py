"""One terminal connection: read frames, process each in its own task, write answers.

Requests on one connection are pipelined: each frame is handled by its own task in
the session's nursery, so a slow host answer never holds up the next request. The
reader stops on end of stream, an oversize length, an unidentifiable frame, the idle
deadline (which a partial frame does not push back: slowloris is closed) or the
switch draining; requests already in progress still finish and are answered if the
connection is still there.
"""

from __future__ import annotations

import contextlib
import math

import structlog
import trio
from forecourt.codecs.errors import CodecError, FrameTooLarge
from forecourt.codecs.framing import Frame, FrameDecoder, Framing, encode_frame, reply_tpdu
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
        idle_timeout_s: float,
        peer: str,
    ) -> None:
        self._stream = stream
        self._ctx = ctx
        self._framing = framing
        self._pipeline = pipeline
        self._metrics = metrics
        self._idle_timeout_s = idle_timeout_s if idle_timeout_s > 0 else math.inf
        self._peer = peer
        self._writer = FrameWriter(stream)
        self._reader_scope = trio.CancelScope()
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
        timeout = self._idle_timeout_s
        # one scope for the connection's life, its deadline pushed back when whole
        # frames arrive (in steps, not at every frame: a scope per read cost a
        # cancel-scope set-up per transaction)
        step = min(1.0, timeout / 10)
        with trio.CancelScope(deadline=trio.current_time() + timeout) as idle:
            while True:
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
                if frames:
                    deadline = trio.current_time() + timeout
                    if deadline - idle.deadline >= step:
                        idle.deadline = deadline
                for frame in frames:
                    nursery.start_soon(self._process, frame)
        if idle.cancelled_caught:
            log.info("idle_timeout_closed", peer=self._peer, buffered=decoder.buffered)
            self._metrics.idle_closed.inc()

    async def _process(self, frame: Frame) -> None:
        try:
            reply = await self._pipeline.handle(self._ctx, frame.payload)
        except CloseConnection:
            self._reader_scope.cancel()
            return
        if reply is None:
            return
        tpdu = reply_tpdu(frame.tpdu) if frame.tpdu is not None else None
        try:
            delivered = await self.send(encode_frame(self._framing, reply.payload, tpdu))
            if not delivered and reply.record is not None:
                await self._pipeline.undelivered(reply.record)
        finally:
            # only now may a retransmission of the request hear the answer
            self._pipeline.settle(reply)

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
