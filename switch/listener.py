"""One listening port: accept within the connection caps, serve each terminal's
session, drain on request. Owned by `run_switch` (switch/server.py)."""

from __future__ import annotations

import ssl

import structlog
import trio
from forecourt.codecs.framing import Framing
from forecourt.switch.admission import Admission, ConnectionLog, SessionLimits
from forecourt.switch.config import ListenerConfig
from forecourt.switch.context import ListenerContext
from forecourt.switch.metrics import SwitchMetrics
from forecourt.switch.pipeline import Pipeline
from forecourt.switch.session import TerminalSession
from forecourt.switch.workers import reuseport_listener

__all__ = ["Listener", "ListenerUnavailable"]

log = structlog.get_logger("forecourt.server")


class ListenerUnavailable(Exception):
    """A listener's address cannot be bound (in use, not this host's, no permission)."""

    def __init__(self, name: str, host: str, port: int, error: OSError) -> None:
        self.name, self.host, self.port = name, host, port
        reason = error.strerror or type(error).__name__
        super().__init__(
            f"listeners {name!r}: cannot listen on {host}:{port}: {reason} "
            "(another program holds the port? change listeners.port or stop it)"
        )


class Listener:
    """One listening port: accepts within the connection caps, runs sessions."""

    def __init__(
        self,
        config: ListenerConfig,
        ctx: ListenerContext,
        pipeline: Pipeline,
        metrics: SwitchMetrics,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.config = config
        self.ctx = ctx
        self.framing = Framing(header=config.framing, tpdu=config.tpdu, max_frame=config.max_frame)
        self._pipeline = pipeline
        self._metrics = metrics
        self._sessions: set[TerminalSession] = set()
        self._accept_scope = trio.CancelScope()
        self._admission = Admission(config.max_connections, config.max_connections_per_address)
        self._limits = SessionLimits.of(config)
        self.events = ConnectionLog(config.name, metrics)
        # built once at start (switch.tls): a listener with TLS configured never serves clear
        if config.tls is not None and tls is None:
            raise ValueError(f"listener {config.name!r} configures TLS but no context was built")
        self._ssl = tls
        self.up = False
        self.reuse_port = False

    async def run(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        try:
            if self.reuse_port:  # `serve --workers N`: N processes share the port
                listeners = [await reuseport_listener(self.config.host, self.config.port)]
            else:
                listeners = await trio.open_tcp_listeners(self.config.port, host=self.config.host)
        except OSError as exc:
            raise ListenerUnavailable(
                self.config.name, self.config.host, self.config.port, exc
            ) from None
        port = listeners[0].socket.getsockname()[1]
        self.up = True
        log.info("listening", listener=self.config.name, host=self.config.host, port=port)
        try:
            async with trio.open_nursery() as counting:
                counting.start_soon(self.events.run)
                async with trio.open_nursery() as sessions:
                    task_status.started(port)
                    with self._accept_scope:
                        async with trio.open_nursery() as accepting:
                            for listener in listeners:
                                accepting.start_soon(self._accept, listener, sessions)
                counting.cancel_scope.cancel()  # the sessions are done: write the last counts
        finally:
            self.up = False
            with trio.CancelScope(shield=True):
                for listener in listeners:
                    await listener.aclose()

    async def _accept(self, listener: trio.SocketListener, sessions: trio.Nursery) -> None:
        while True:
            try:
                stream = await listener.accept()
            except OSError as exc:
                log.warning("accept_failed", listener=self.config.name, error=type(exc).__name__)
                await trio.sleep(0.05)
                continue
            try:
                address, port = stream.socket.getpeername()[:2]
            except OSError:  # gone already
                address, port = "?", 0
            refused = self._admission.admit(address)
            if refused is not None:
                self.events.refused(refused)
                await stream.aclose()
                continue
            sessions.start_soon(self._serve, stream, address, f"{address}:{port}")

    async def _serve(self, stream: trio.SocketStream, address: str, peer: str) -> None:
        try:
            wrapped: trio.abc.Stream = stream
            if self._ssl is not None:
                wrapped = trio.SSLStream(stream, self._ssl, server_side=True)
            session = TerminalSession(
                wrapped,
                self.ctx,
                self.framing,
                self._pipeline,
                self._metrics,
                self._limits,
                peer,
                self.events,
            )
            self._sessions.add(session)
            gauge = self._metrics.connections.labels(listener=self.config.name)
            gauge.inc()
            try:
                await session.run()
            finally:
                self._sessions.discard(session)
                gauge.dec()
        finally:
            self._admission.release(address)

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def connection_count(self) -> int:
        return len(self._sessions)

    def drain(self) -> None:
        """Stop accepting and stop every session reading; requests in hand go on."""
        self._accept_scope.cancel()
        for session in list(self._sessions):
            session.stop_reading()
