"""Connections to a payShield: a pool with an in-flight cap, deadlines, reconnect.

One command at a time on a connection (a reply follows its request), up to
`connections` connections opened as the load needs them, and at most `in_flight`
commands outstanding at once; a command over the cap waits for a place under its
deadline. Every command runs under `timeout_s` (a trio cancel scope, nested in
the caller's own): a command that passes it, or a connection that fails, raises
`ModuleUnavailable`, and the connection it was on is closed, never reused half
way through an exchange. A failed connect makes the next one wait (backoff from
50 ms doubling to 2 s), so a down HSM costs the switch one refused connect per
backoff period, not one per transaction.

The message header is a 4-digit counter per command: the HSM echoes it, so a
reply that belongs to another request is refused (`MalformedReply`).
"""

from __future__ import annotations

import collections
import itertools
from collections.abc import Awaitable, Callable

import trio
from forecourt.keys.payshield.wire import (
    FrameBuffer,
    MalformedReply,
    Reply,
    command_payload,
    frame,
    parse_reply,
)
from forecourt.keys.security_module import ModuleError, ModuleUnavailable

Connect = Callable[[str, int], Awaitable[trio.abc.Stream]]
BACKOFF_FIRST_S = 0.05
BACKOFF_MAX_S = 2.0


async def open_tcp(host: str, port: int) -> trio.abc.Stream:
    return await trio.open_tcp_stream(host, port)


class _Broken(Exception):
    """The connection broke during an exchange."""


class _Connection:
    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self.frames = FrameBuffer()

    async def exchange(self, payload: bytes) -> bytes:
        await self.stream.send_all(frame(payload))
        while True:
            data = await self.stream.receive_some(65536)
            if not data:
                raise trio.BrokenResourceError("the HSM closed the connection")
            replies = self.frames.feed(data)
            if replies:
                if len(replies) > 1 or self.frames.pending:
                    raise MalformedReply("the HSM sent more than one reply to one command")
                return replies[0]


class ConnectionPool:
    """Commands to one HSM address. `status()` says how the pool stands."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        header_length: int = 4,
        connections: int = 4,
        in_flight: int = 32,
        timeout_s: float = 2.0,
        connect: Connect = open_tcp,
    ) -> None:
        if connections < 1 or in_flight < 1 or timeout_s <= 0 or header_length < 1:
            raise ValueError("connections, in_flight, timeout_s and header length must be positive")
        self.host, self.port = host, port
        self.header_length = header_length
        self.timeout_s = timeout_s
        self.max_connections = connections
        self._connect = connect
        self._idle: collections.deque[_Connection] = collections.deque()
        self._opened = 0
        self._slots = trio.Semaphore(connections)
        self._cap = trio.CapacityLimiter(in_flight)
        self._headers = itertools.count()
        self._retry_at = 0.0
        self._backoff = BACKOFF_FIRST_S
        self.errors: collections.Counter[str] = collections.Counter()
        self.commands = 0
        self.last_failure: str | None = None
        self.up: bool | None = None  # None: nothing asked yet; else how the last command went

    @property
    def in_flight(self) -> int:
        return self._cap.borrowed_tokens

    @property
    def connected(self) -> int:
        return self._opened

    def _header(self) -> bytes:
        n = next(self._headers) % (10**self.header_length)
        return str(n).rjust(self.header_length, "0").encode("ascii")

    async def call(self, command: str, fields: bytes) -> Reply:
        """Send `command` and return its reply (any error code: the caller maps it)."""
        try:
            with trio.fail_after(self.timeout_s):
                async with self._cap, self._slots:
                    return await self._call(command, fields)
        except trio.TooSlowError:
            self._failed(f"{command}: no answer within {self.timeout_s:g} s")
            raise ModuleUnavailable(command, "deadline", "no answer in time") from None

    async def _call(self, command: str, fields: bytes) -> Reply:
        header = self._header()
        request = command_payload(header, command, fields)
        reused = bool(self._idle)
        connection = await self._take(command)
        try:
            payload = await self._exchange(connection, request)
        except _Broken:
            if not reused:
                raise self._lost(command) from None
            # an idle connection the HSM had closed (a restart): once more, afresh
            connection = await self._take(command)
            try:
                payload = await self._exchange(connection, request)
            except _Broken:
                raise self._lost(command) from None
        try:
            reply = parse_reply(payload, header, command)
        except MalformedReply as exc:
            await self._drop(connection)
            self._failed(f"{command}: {exc}", "reply")
            raise ModuleError(command, "reply", "the HSM's reply is malformed") from None
        self._idle.append(connection)
        self.up = True
        self.commands += 1
        if not reply.ok:
            self.errors[reply.error] += 1
        return reply

    async def _exchange(self, connection: _Connection, request: bytes) -> bytes:
        """The reply payload; on any failure the connection is closed, never reused
        half way through an exchange (cancelled, broken or malformed)."""
        try:
            return await connection.exchange(request)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            await self._drop(connection)
            raise _Broken from None
        except MalformedReply as exc:
            await self._drop(connection)
            self._failed(f"{exc}", "reply")
            raise ModuleError("reply", "reply", "the HSM's reply is malformed") from None
        except BaseException:
            await self._drop(connection)
            raise

    def _lost(self, command: str) -> ModuleUnavailable:
        self._failed(f"{command}: the connection was lost")
        return ModuleUnavailable(command, "connection", "the HSM connection failed")

    async def _take(self, command: str) -> _Connection:
        if self._idle:
            return self._idle.popleft()
        wait = self._retry_at - trio.current_time()
        if wait > 0:
            await trio.sleep(wait)
        try:
            stream = await self._connect(self.host, self.port)
        except OSError as exc:
            self._retry_at = trio.current_time() + self._backoff
            self._backoff = min(self._backoff * 2, BACKOFF_MAX_S)
            self._failed(
                f"connect to {self.host}:{self.port}: {exc.strerror or type(exc).__name__}"
            )
            raise ModuleUnavailable(command, "connection", "cannot connect to the HSM") from None
        self._backoff = BACKOFF_FIRST_S
        self._opened += 1
        return _Connection(stream)

    async def _drop(self, connection: _Connection) -> None:
        self._opened -= 1
        with trio.CancelScope(shield=True):
            await trio.aclose_forcefully(connection.stream)

    def _failed(self, reason: str, kind: str = "unavailable") -> None:
        self.up = False
        self.errors[kind] += 1
        self.last_failure = reason

    async def aclose(self) -> None:
        while self._idle:
            await self._drop(self._idle.popleft())
