"""payShield frames: a 2-byte big-endian length, the message header, the command.

A request is `length | header | command code (2A) | fields`; the reply is
`length | the same header | response code | error code (2N) | fields`, where the
response code is the command code with its second character one on (A0 -> A1,
CA -> CB, M6 -> M7, NC -> ND). The header is the host's to choose (its length is
configured on the HSM, 4 characters by default); the HSM echoes it, so the
backend uses it to tie a reply to its request. Field parsing errors are
`FieldError` (the simulator answers 15, the backend refuses the reply), with
messages that name the field, never its value.
"""

from __future__ import annotations

import attrs
from forecourt.keys.errors import KeysError

LENGTH_BYTES = 2
MAX_PAYLOAD = 0xFFFF
DEFAULT_HEADER_LENGTH = 4
NO_ERROR = "00"
_HEX = frozenset("0123456789ABCDEFabcdef")


class WireError(KeysError):
    """A frame or field does not follow the host-command layout."""


class FieldError(WireError):
    """A field is missing, too short or not of its type."""


class MalformedReply(WireError):
    """A reply that is not the answer to the request: wrong header, response code
    or error code."""


def response_code(command: str) -> str:
    """The response code of `command`: its second character one on."""
    if len(command) != 2 or not command.isascii() or not command.isalnum():
        raise WireError("a command code is two letters or digits")
    second = command[1]
    if second in ("9", "Z", "z"):
        raise WireError(f"command {command} has no response code one on")
    return command[0] + chr(ord(second) + 1)


def frame(payload: bytes) -> bytes:
    """`payload` behind its 2-byte big-endian length."""
    if len(payload) > MAX_PAYLOAD:
        raise WireError(f"a host command is at most {MAX_PAYLOAD} bytes")
    return len(payload).to_bytes(LENGTH_BYTES, "big") + payload


def command_payload(header: bytes, command: str, fields: bytes) -> bytes:
    return header + command.encode("ascii") + fields


@attrs.frozen
class Request:
    """A request as the HSM reads it: header, command code, the field bytes."""

    header: bytes
    command: str
    fields: bytes = attrs.field(repr=False)


def parse_request(payload: bytes, header_length: int) -> Request:
    if len(payload) < header_length + 2:
        raise FieldError("request shorter than its header and command code")
    code = payload[header_length : header_length + 2]
    if not code.isascii() or not code.isalnum():
        raise FieldError("command code is not two letters or digits")
    return Request(payload[:header_length], code.decode("ascii"), payload[header_length + 2 :])


def reply_payload(request: Request, error: str, fields: bytes = b"") -> bytes:
    """The reply to `request`: its header, the response code, `error`, `fields`."""
    return request.header + response_code(request.command).encode("ascii") + error.encode() + fields


@attrs.frozen
class Reply:
    error: str
    fields: bytes = attrs.field(repr=False)

    @property
    def ok(self) -> bool:
        return self.error == NO_ERROR


def parse_reply(payload: bytes, header: bytes, command: str) -> Reply:
    """The error code and fields of the reply to `command` sent with `header`;
    `MalformedReply` for anything else."""
    n = len(header)
    if len(payload) < n + 4:
        raise MalformedReply(f"reply to {command} shorter than header, response and error code")
    if payload[:n] != header:
        raise MalformedReply(f"reply to {command} carries another request's header")
    expected = response_code(command).encode("ascii")
    if payload[n : n + 2] != expected:
        raise MalformedReply(f"reply to {command} has response code other than {expected.decode()}")
    error = payload[n + 2 : n + 4]
    if not error.isascii() or not error.isalnum():
        raise MalformedReply(f"reply to {command} has no two-character error code")
    return Reply(error.decode("ascii"), payload[n + 4 :])


class FrameBuffer:
    """Whole payloads out of a byte stream (the 2-byte length framing)."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes | bytearray) -> list[bytes]:
        self._buf += data
        out: list[bytes] = []
        while len(self._buf) >= LENGTH_BYTES:
            n = int.from_bytes(self._buf[:LENGTH_BYTES], "big")
            if len(self._buf) < LENGTH_BYTES + n:
                break
            out.append(bytes(self._buf[LENGTH_BYTES : LENGTH_BYTES + n]))
            del self._buf[: LENGTH_BYTES + n]
        return out

    @property
    def pending(self) -> int:
        return len(self._buf)


class Fields:
    """A cursor over a command's or reply's fields, in the manual's types: nA/nN/nH
    (ASCII), key blocks ('S' followed by a self-delimiting block), binary."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._at = 0

    def take(self, n: int, name: str) -> str:
        if self._at + n > len(self._data):
            raise FieldError(f"{name}: not enough data")
        raw = self._data[self._at : self._at + n]
        self._at += n
        if not raw.isascii():
            raise FieldError(f"{name}: not ASCII")
        return raw.decode("ascii")

    def numeric(self, n: int, name: str) -> str:
        text = self.take(n, name)
        if not text.isdigit():
            raise FieldError(f"{name}: not {n}N")
        return text

    def hex(self, n: int, name: str) -> str:
        text = self.take(n, name)
        if any(c not in _HEX for c in text):
            raise FieldError(f"{name}: not {n}H")
        return text.upper()

    def binary(self, n: int, name: str) -> bytes:
        if self._at + n > len(self._data):
            raise FieldError(f"{name}: not enough data")
        raw = self._data[self._at : self._at + n]
        self._at += n
        return raw

    def peek(self, n: int = 1) -> bytes:
        return self._data[self._at : self._at + n]

    def optional(self, marker: bytes) -> bool:
        """True (and the marker consumed) if the next byte is `marker`."""
        if self.peek(len(marker)) == marker:
            self._at += len(marker)
            return True
        return False

    def key_block(self, name: str) -> str:
        """A key under the LMK or a ZMK in key-block form: 'S', then a block whose
        characters 2-5 give its total length (TR-31 and Thales blocks alike)."""
        if self.take(1, name) != "S":
            raise FieldError(f"{name}: not a key block (scheme 'S')")
        head = self.take(5, name)
        if not head[1:].isdigit() or int(head[1:]) < 16:
            raise FieldError(f"{name}: key block length is not 4N")
        rest = self.take(int(head[1:]) - 5, name)
        return "S" + head + rest

    def remaining(self) -> int:
        return len(self._data) - self._at

    def end(self, name: str) -> None:
        if self._at != len(self._data):
            raise FieldError(f"{name}: data after the last field")
