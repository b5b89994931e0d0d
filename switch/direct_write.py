"""Whole frames to one stream, from any number of tasks, mostly without a yield.

A trio ``send_all`` yields to the scheduler at least once even when the kernel takes
every byte at once, and a send lock adds another yield; on the switch's hot path
(two writes a transaction) those trips cost more than the write itself. When no
other write of the stream is under way, the bytes go straight to the non-blocking
socket; whatever the kernel does not take is left to ``send_all`` under the lock,
and later frames queue behind it on the lock, so frames never interleave.
"""

from __future__ import annotations

import os

import trio


class FrameWriter:
    """The only writer of one stream (a terminal session's or an acquirer connection's)."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self._stream = stream
        self._lock = trio.Lock()
        # TLS and other wrapped streams always go through send_all
        self._fd = stream.socket.fileno() if isinstance(stream, trio.SocketStream) else -1
        self._closed = False

    def close(self) -> None:
        """No direct write after this: once the stream is closed its descriptor
        number may belong to another connection."""
        self._closed = True

    async def send(self, data: bytes) -> None:
        """Write one whole frame; raises what ``send_all`` raises (or OSError)."""
        if self._closed:
            raise trio.ClosedResourceError("writer closed")
        if self._fd >= 0 and not self._lock.locked():
            try:
                sent = os.write(self._fd, data)
            except BlockingIOError:
                sent = 0
            if sent == len(data):
                return
            if sent:
                await self._finish_frame(data[sent:])
                return
        async with self._lock:
            await self._stream.send_all(data)

    async def _finish_frame(self, rest: bytes) -> None:
        """The rest of a frame the kernel took only part of; if that fails or is
        cancelled, the stream ends mid-frame and nothing more may follow it."""
        try:
            async with self._lock:
                await self._stream.send_all(rest)
        except BaseException:
            self._closed = True
            raise
