"""A blocking payShield client: one connection, for the key store's synchronous methods.

The key store is called from threads (the switch) and from CLIs that run no trio
loop, so it cannot use the async pool (`keys/payshield_pool.py`). This is the
same codec (`wire`) over a plain socket with a timeout: one connection, opened
on first use, and opened once more when a command finds it broken (an HSM
restart between two commands). A lock makes it safe for the switch's threads;
key-store commands are rare (ceremonies, rotations), so one connection is enough.
"""

from __future__ import annotations

import itertools
import socket
import threading

from forecourt.keys.payshield.wire import (
    FrameBuffer,
    MalformedReply,
    Reply,
    command_payload,
    frame,
    parse_reply,
)
from forecourt.keys.security_module import ModuleError, ModuleUnavailable


class BlockingClient:
    """Host commands to one payShield, one at a time. Close with `close()`."""

    def __init__(
        self, host: str, port: int, *, header_length: int = 4, timeout_s: float = 2.0
    ) -> None:
        self.host, self.port = host, port
        self.header_length = header_length
        self.timeout_s = timeout_s
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()
        self._headers = itertools.count(1)
        self.commands = 0

    def __repr__(self) -> str:
        return f"BlockingClient({self.host}:{self.port})"

    def close(self) -> None:
        with self._lock:
            self._drop()

    def _drop(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def _header(self) -> bytes:
        n = next(self._headers) % (10**self.header_length)
        return str(n).rjust(self.header_length, "0").encode("ascii")

    def call(self, command: str, fields: bytes) -> Reply:
        """Send `command`; its reply, whatever its error code (the caller maps it).
        ModuleUnavailable when the HSM cannot be reached or does not answer in time."""
        with self._lock:
            header = self._header()
            request = frame(command_payload(header, command, fields))
            reused = self._sock is not None
            try:
                payload = self._exchange(request)
            except OSError:
                self._drop()
                if not reused:
                    raise self._unavailable(command) from None
                try:  # the HSM closed an idle connection (a restart): once more
                    payload = self._exchange(request)
                except OSError:
                    self._drop()
                    raise self._unavailable(command) from None
            try:
                reply = parse_reply(payload, header, command)
            except MalformedReply:
                self._drop()
                raise ModuleError(command, "reply", "the HSM's reply is malformed") from None
            self.commands += 1
            return reply

    def _unavailable(self, command: str) -> ModuleUnavailable:
        return ModuleUnavailable(
            command, "connection", f"no answer from the HSM at {self.host}:{self.port}"
        )

    def _exchange(self, request: bytes) -> bytes:
        if self._sock is None:
            self._sock = socket.create_connection((self.host, self.port), self.timeout_s)
        sock = self._sock
        sock.settimeout(self.timeout_s)
        sock.sendall(request)
        frames = FrameBuffer()
        while True:
            data = sock.recv(65536)
            if not data:
                raise ConnectionResetError("the HSM closed the connection")
            found = frames.feed(data)
            if found:
                return found[0]
