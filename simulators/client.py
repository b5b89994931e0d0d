"""The client end of a framed ISO 8583 connection, as terminals and load drivers use it.

One object per TCP connection: send messages (MAC'd or not), raw bytes or a
raw frame, and receive decoded answers with their raw bytes for MAC checks.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

import trio
from forecourt.codecs.dialect import decode, encode, encode_with_mac
from forecourt.codecs.framing import FrameDecoder, encode_frame
from forecourt.codecs.message import Message

from .wire import WireFormat

__all__ = ["ConnectionClosed", "HostConnection"]


class ConnectionClosed(Exception):
    """The peer closed the connection (or it broke) while we waited for an answer."""


class HostConnection:
    """A framed connection to a switch or a host."""

    def __init__(self, stream: trio.SocketStream, wire: WireFormat) -> None:
        self.stream = stream
        self.wire = wire
        self._decoder = FrameDecoder(wire.framing)
        self._frames: deque[bytes] = deque()
        self.closed = False

    @classmethod
    async def open(cls, host: str, port: int, wire: WireFormat) -> HostConnection:
        stream = await trio.open_tcp_stream(host, port)
        return cls(stream, wire)

    def frame(self, message: Message, mac: Callable[[bytes], bytes] | None = None) -> bytes:
        """The framed bytes of a message, MAC'd when `mac` is given."""
        dialect = self.wire.dialect
        payload = encode_with_mac(dialect, message, mac) if mac else encode(dialect, message)
        return encode_frame(self.wire.framing, payload, self.wire.tpdu)

    async def send(self, message: Message, mac: Callable[[bytes], bytes] | None = None) -> bytes:
        """Send one message; returns the encoded payload (without header and TPDU)."""
        framed = self.frame(message, mac)
        await self.send_raw(framed)
        return framed[self._header_and_tpdu() :]

    def _header_and_tpdu(self) -> int:
        framing = self.wire.framing
        size = {"2b": 2, "4a": 4}.get(framing.header, 0)
        return size + (5 if framing.tpdu else 0)

    async def send_raw(self, data: bytes) -> None:
        """Bytes as they are: a frame built elsewhere, or deliberately broken input."""
        try:
            await self.stream.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            raise ConnectionClosed("send failed") from exc

    async def receive_payload(self) -> bytes:
        """The next frame's ISO 8583 payload; raises ConnectionClosed at end of stream."""
        while not self._frames:
            try:
                data = await self.stream.receive_some(65536)
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
                self.closed = True
                raise ConnectionClosed("receive failed") from exc
            if not data:
                self.closed = True
                raise ConnectionClosed("closed by peer")
            for frame in self._decoder.feed(data):
                self._frames.append(frame.payload)
        return self._frames.popleft()

    async def receive(self) -> Message:
        """The next answer, decoded (raises DecodeError for an undecodable one)."""
        return decode(self.wire.dialect, await self.receive_payload())

    async def aclose(self) -> None:
        self.closed = True
        with trio.CancelScope(shield=True):
            await self.stream.aclose()
