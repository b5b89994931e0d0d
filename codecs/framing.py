"""Framing on a TCP stream: length header, optional TPDU, bounded incremental decoding.

The length counts everything after the header: the TPDU (when used) plus the
ISO 8583 message. A zero length is a keep-alive and yields no frame.
"""

from __future__ import annotations

import attrs

from .errors import DecodeError, EncodeError, FrameTooLarge

__all__ = [
    "HEADERS",
    "TPDU_LENGTH",
    "Frame",
    "FrameDecoder",
    "Framing",
    "encode_frame",
    "reply_tpdu",
]

HEADERS: tuple[str, ...] = ("2b", "4a", "none")
TPDU_LENGTH = 5
_HEADER_SIZE = {"2b": 2, "4a": 4, "none": 0}
_HEADER_LIMIT = {"2b": 0xFFFF, "4a": 9999}


def _check_header(_: object, __: object, value: str) -> None:
    if value not in _HEADER_SIZE:
        raise ValueError(f"framing header must be one of {', '.join(HEADERS)}, not {value!r}")


def _check_max(_: object, __: object, value: int) -> None:
    if value < 1:
        raise ValueError("max_frame must be positive")


@attrs.frozen
class Framing:
    """How messages are delimited on one listener or acquirer link.

    header: "2b" (2-byte big-endian binary length), "4a" (4 ASCII digits) or
    "none" (the transport delimits: each chunk fed is one frame).
    """

    header: str = attrs.field(default="2b", validator=_check_header)
    tpdu: bool = False
    max_frame: int = attrs.field(default=8192, validator=_check_max)


@attrs.frozen
class Frame:
    """One frame's content: the ISO 8583 message and the TPDU it came behind."""

    payload: bytes
    tpdu: bytes | None = None


class FrameDecoder:
    """Incremental, bounded frame decoder for one connection.

    Accepts any chunking (a byte at a time, several frames per read). It keeps
    at most one incomplete frame: a header announcing more than `max_frame`
    raises FrameTooLarge at once, before any of the body is buffered. After an
    error the stream cannot be resynchronised; close the connection.
    """

    def __init__(self, framing: Framing) -> None:
        self._framing = framing
        self._size = _HEADER_SIZE[framing.header]
        self._buffer = bytearray()

    @property
    def buffered(self) -> int:
        """Bytes held for an incomplete frame."""
        return len(self._buffer)

    def feed(self, data: bytes | bytearray | memoryview) -> list[Frame]:
        """Take the next chunk of the stream; return the frames it completes."""
        framing = self._framing
        if self._size == 0:
            if not data:
                return []
            if len(data) > framing.max_frame:
                raise FrameTooLarge(len(data), framing.max_frame)
            return [self._frame(bytes(data))]

        buffer = self._buffer
        buffer += data
        frames: list[Frame] = []
        start = 0
        size = self._size
        end = len(buffer)
        while end - start >= size:
            length = self._length(buffer, start)
            if length > framing.max_frame:
                self._buffer = bytearray()
                raise FrameTooLarge(length, framing.max_frame)
            stop = start + size + length
            if stop > end:
                break
            if length:
                frames.append(self._frame(bytes(buffer[start + size : stop])))
            start = stop
        if start:
            del buffer[:start]
        return frames

    def _length(self, buffer: bytearray, start: int) -> int:
        header = buffer[start : start + self._size]
        if self._size == 2:
            return (header[0] << 8) | header[1]
        if not header.isdigit():
            self._buffer = bytearray()
            raise DecodeError("frame", "length header is not 4 ASCII digits")
        return int(header)

    def _frame(self, body: bytes) -> Frame:
        if not self._framing.tpdu:
            return Frame(body, None)
        if len(body) <= TPDU_LENGTH:
            self._buffer = bytearray()
            raise DecodeError("frame", "frame too short for its TPDU and a message")
        return Frame(body[TPDU_LENGTH:], body[:TPDU_LENGTH])


def encode_frame(framing: Framing, payload: bytes, tpdu: bytes | None = None) -> bytes:
    """Header + TPDU + payload; raises EncodeError or FrameTooLarge."""
    if framing.tpdu:
        if tpdu is None or len(tpdu) != TPDU_LENGTH:
            raise EncodeError("frame", "this framing needs a 5-byte TPDU")
        body = bytes(tpdu) + payload
    else:
        if tpdu is not None:
            raise EncodeError("frame", "this framing carries no TPDU")
        body = bytes(payload)
    length = len(body)
    if length > framing.max_frame:
        raise FrameTooLarge(length, framing.max_frame)
    if framing.header == "none":
        return body
    limit = _HEADER_LIMIT[framing.header]
    if length > limit:
        raise FrameTooLarge(length, limit)
    if framing.header == "2b":
        return length.to_bytes(2, "big") + body
    return b"%04d" % length + body


def reply_tpdu(tpdu: bytes) -> bytes:
    """The TPDU for the answer: same ID, destination and source addresses swapped."""
    if len(tpdu) != TPDU_LENGTH:
        raise EncodeError("frame", "a TPDU is 5 bytes")
    return bytes(tpdu[:1]) + bytes(tpdu[3:5]) + bytes(tpdu[1:3])
