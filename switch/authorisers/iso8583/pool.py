"""The ISO 8583 acquirer link as an authoriser: a pool of connections to one host.

The pool keeps `connections` connections up (reconnecting with backoff, signing on,
echo tests), picks one per request, caps the requests in flight, and gives each its
own switch STAN in field 11, so terminals' STANs never collide on the link. A STAN
that timed out goes into the allocator's quarantine, the one memory of timed-out
STANs: the connections ask it to tell a late answer from an unknown one.
"""

from __future__ import annotations

import functools
import itertools
import math
import os
import random
import ssl
from collections.abc import Callable

import structlog
import trio
from forecourt.codecs.dialect import get_dialect
from forecourt.codecs.family import Family
from forecourt.codecs.framing import Framing
from forecourt.codecs.message import Message
from forecourt.codecs.network import NetworkFunction, network_request
from forecourt.switch.authoriser import (
    Answer,
    AuthoriserBusy,
    AuthoriserError,
    AuthoriserKeysUnavailable,
    AuthoriserUnavailable,
    BeforeSend,
)
from forecourt.switch.config import AcquirerConfig
from forecourt.switch.matching import StanAllocator, StanExhausted
from forecourt.switch.metrics import SwitchMetrics
from forecourt.switch.tls import HandshakeLog, TlsHandshakeFailed, handshake_failure_reason

from .connection import AcquirerConnection, AwaitedAnswers, MacKey, ZoneMac, connect
from .link_settings import LinkSettings, link_settings

__all__ = ["Iso8583Authoriser", "LinkSettings", "build_iso8583", "link_settings"]

log = structlog.get_logger("forecourt.authorisers.iso8583")

KIND = "iso8583"


def match_key(message: Message) -> tuple[str, str]:
    """An answer's request on a link: the switch STAN (11) and the terminal id (41)."""
    fields = message.fields
    return fields.get("11") or "", fields.get("41") or ""


class Iso8583Authoriser:
    """An acquirer host over ISO 8583: the `Authoriser` of kind "iso8583"."""

    def __init__(
        self,
        settings: LinkSettings,
        metrics: SwitchMetrics,
        zak: Callable[[], MacKey | None] | None = None,
    ) -> None:
        self.settings = settings
        self._metrics = metrics
        self._mac = ZoneMac(zak)
        self._stans = StanAllocator(
            quarantine_s=max(60.0, 10 * settings.request_timeout_s), start=random.randrange(999_999)
        )
        self._answers = AwaitedAnswers(settings.name, match_key, self._stans, self._mac, metrics)
        self._connections: list[AcquirerConnection] = []
        self._rr = itertools.count()
        self._connection_numbers = itertools.count(1)
        self._handshakes = HandshakeLog(settings.name, settings.reconnect_max_s)
        # each pooled connection's state (LINK_STATES); the link shows the best of them
        self._slots: list[str] = ["down"] * max(1, settings.connections)
        self.last_error: str | None = None  # the last connect failure, for /healthz

    # -- the protocol's members ---------------------------------------------------

    @property
    def name(self) -> str:
        return self.settings.name

    @property
    def kind(self) -> str:
        return KIND

    @property
    def family(self) -> Family:
        return self.settings.dialect.family

    @property
    def acquirer_id(self) -> str | None:
        return self.settings.acquirer_id

    @property
    def available(self) -> bool:
        """A connection is up (and signed on, when sign-on is configured)."""
        return bool(self._connections)

    @property
    def state(self) -> str:
        """up, signing_on, connecting or down: the best of its connections."""
        for state in ("up", "signing_on", "connecting"):
            if state in self._slots:
                return state
        return "down"

    @property
    def request_timeout_s(self) -> float:
        return self.settings.request_timeout_s

    @property
    def max_in_flight(self) -> int:
        return self.settings.max_in_flight

    @property
    def in_flight(self) -> int:
        return len(self._answers)

    def match_key(self, message: Message) -> tuple[str, str]:
        return match_key(message)

    async def authorise(
        self,
        request: Message,
        *,
        before_send: BeforeSend | None = None,
        timeout: float | None = None,
    ) -> Answer:
        """Send a request with a switch STAN and wait for its answer.

        The caller's field 11 is replaced (and field 32 added when the request has
        none and the link has an acquirer id); the answer comes back with the switch
        STAN in field 11, `Answer.reference`, and the caller restores its own.
        `before_send` gets the message as the host will see it, before anything leaves.
        """
        if len(self._answers) >= self.settings.max_in_flight:
            raise AuthoriserBusy(self.name)
        connection = self._pick()
        try:
            stan = self._stans.allocate()
        except StanExhausted as exc:
            raise AuthoriserBusy(self.name) from exc
        updates: dict[int, str | None] = {11: stan}
        if self.settings.acquirer_id is not None and "32" not in request.fields:
            updates[32] = self.settings.acquirer_id
        limit = self.settings.request_timeout_s if timeout is None else timeout
        answered = False
        try:
            answer = await connection.exchange(
                request.with_fields(updates),
                limit if math.isfinite(limit) else math.inf,
                before_send,
            )
            answered = True
            return answer
        finally:
            # quarantined unless answered: it may still reach the host and be answered
            self._stans.release(stan, quarantine=not answered)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Keep `connections` connections up until cancelled."""
        async with trio.open_nursery() as nursery:
            for slot in range(len(self._slots)):
                nursery.start_soon(self._keep_connected, slot)
            task_status.started()

    # -- exchanging ----------------------------------------------------------------

    def _pick(self) -> AcquirerConnection:
        if not self._connections:
            raise AuthoriserUnavailable(self.name)
        return self._connections[next(self._rr) % len(self._connections)]

    # -- connections -----------------------------------------------------------------

    async def _keep_connected(self, slot: int) -> None:
        delay = self.settings.reconnect_initial_s
        while True:
            self._set_slot(slot, "connecting")
            try:
                with trio.fail_after(self.settings.connect_timeout_s):
                    stream = await connect(
                        self.settings.host,
                        self.settings.port,
                        self.settings.tls,
                        self.settings.server_name,
                    )
            except TlsHandshakeFailed as exc:
                self._set_slot(slot, "down")
                self._handshake_failed(exc.reason)
                await trio.sleep(delay * random.uniform(0.8, 1.2))
                delay = min(self.settings.reconnect_max_s, delay * 2)
                continue
            except (OSError, trio.TooSlowError) as exc:
                self._connect_failed(exc)
                self._set_slot(slot, "down")
                await trio.sleep(delay * random.uniform(0.8, 1.2))
                delay = min(self.settings.reconnect_max_s, delay * 2)
                continue
            connection = AcquirerConnection(
                next(self._connection_numbers),
                stream,
                link=self.name,
                dialect=self.settings.dialect,
                framing=self.settings.framing,
                answers=self._answers,
                mac=self._mac,
                metrics=self._metrics,
            )
            was_up = False
            self._set_slot(slot, "signing_on" if self.settings.sign_on else "up")
            try:
                was_up = await self._serve_connection(connection, slot)
            finally:
                if connection in self._connections:
                    self._connections.remove(connection)
                self._slots[slot] = "down"
                self._publish_state()
                await connection.aclose()
            if was_up:
                delay = self.settings.reconnect_initial_s
                await trio.sleep(delay * random.uniform(0.5, 1.0))
                continue
            # Never came up (no sign-on answer): back off as for a failed connect. A
            # TLS 1.3 host refuses a client certificate only after the handshake.
            if self.settings.tls is not None and isinstance(
                connection.failure, trio.BrokenResourceError
            ):
                self._handshake_failed(handshake_failure_reason(connection.failure))
            await trio.sleep(delay * random.uniform(0.8, 1.2))
            delay = min(self.settings.reconnect_max_s, delay * 2)

    def _handshake_failed(self, reason: str) -> None:
        """Counted every time, logged once per reconnect backoff (`HandshakeLog`)."""
        self._metrics.tls_handshake_failures.labels(link=self.name, reason=reason).inc()
        self._handshakes.report(reason)

    async def _serve_connection(self, connection: AcquirerConnection, slot: int) -> bool:
        """Sign on, then serve until the reader ends or an echo test fails; True if it was up."""
        up = False
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._read, connection, nursery.cancel_scope)
                signed_on = not self.settings.sign_on or (await self._signed_on(connection))
                if not signed_on:
                    log.warning("acquirer_sign_on_failed", link=self.name)
                    nursery.cancel_scope.cancel()
                    return False
                up = True
                self._connections.append(connection)
                self._slots[slot] = "up"
                self._publish_state()
                log.info("acquirer_connected", link=self.name, connection=connection.number)
                if self.settings.echo_interval_s > 0:
                    nursery.start_soon(self._echo, connection, nursery.cancel_scope)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            log.warning("acquirer_connection_lost", link=self.name, error=type(exc).__name__)
        return up

    @staticmethod
    async def _read(connection: AcquirerConnection, scope: trio.CancelScope) -> None:
        await connection.read_answers()
        scope.cancel()

    def _set_slot(self, slot: int, state: str) -> None:
        if self._slots[slot] != state:
            self._slots[slot] = state
            self._publish_state()

    def _publish_state(self) -> None:
        self._metrics.link_connections.labels(link=self.name).set(len(self._connections))
        self._metrics.set_link_state(self.name, self.state)

    def _connect_failed(self, exc: OSError | trio.TooSlowError) -> None:
        """One line naming the host, port and what the system said."""
        if isinstance(exc, trio.TooSlowError):
            reason = f"no answer within {self.settings.connect_timeout_s:g} s"
        else:
            reason = _os_reason(exc)
        where = f"{self.settings.host}:{self.settings.port}"
        self.last_error = f"connect to {where}: {reason}"
        log.warning(
            "acquirer_connect_failed",
            link=self.name,
            host=self.settings.host,
            port=self.settings.port,
            reason=reason,
        )

    async def _signed_on(self, connection: AcquirerConnection) -> bool:
        try:
            return await self._network(NetworkFunction.SIGN_ON, connection) is not None
        except AuthoriserKeysUnavailable:  # not MAC'd, not sent: signed on it is not
            return False

    async def _echo(self, connection: AcquirerConnection, scope: trio.CancelScope) -> None:
        while True:
            await trio.sleep(self.settings.echo_interval_s)
            try:
                answered = await self._network(NetworkFunction.ECHO, connection) is not None
            except AuthoriserKeysUnavailable:
                # the security module cannot MAC the echo: it proves nothing about the
                # host, so the connection stays (its requests fail 909 meanwhile)
                continue
            if not answered:
                log.warning("acquirer_echo_failed", link=self.name, connection=connection.number)
                scope.cancel()
                return

    async def _network(
        self, function: NetworkFunction, connection: AcquirerConnection
    ) -> Message | None:
        stan = self._stans.allocate()
        request = network_request(self.family, function, stan)
        answered = False
        try:
            limit = self.settings.request_timeout_s
            answer = await connection.exchange(request, limit if math.isfinite(limit) else math.inf)
            answered = True
        except AuthoriserKeysUnavailable:
            raise
        except (AuthoriserError, trio.BrokenResourceError, trio.ClosedResourceError):
            return None
        finally:
            self._stans.release(stan, quarantine=not answered)
        return answer.message


def build_iso8583(
    acquirer: AcquirerConfig,
    metrics: SwitchMetrics,
    zak: Callable[[str], MacKey | None],
    tls: ssl.SSLContext | None = None,
) -> Iso8583Authoriser:
    """The table of kinds' factory for "iso8583": an `[[acquirers]]` entry as a link.

    `tls` is the link's client context, built once at start (`switch.tls`); it must
    be given when the entry configures TLS, so a link never falls back to clear TCP.
    """
    if acquirer.tls is not None and tls is None:
        raise ValueError(f"acquirer {acquirer.name!r} configures TLS but no context was built")
    settings = link_settings(
        acquirer,
        get_dialect(acquirer.dialect, acquirer.bitmap),
        Framing(header=acquirer.framing, tpdu=acquirer.tpdu, max_frame=acquirer.max_frame),
        tls,
    )
    return Iso8583Authoriser(
        settings, metrics, zak=functools.partial(zak, acquirer.name) if acquirer.mac else None
    )


def _os_reason(exc: OSError) -> str:
    """What the system said (trio's "all attempts failed" keeps it in its cause)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno:
            return os.strerror(seen.errno)
        inner = getattr(seen, "exceptions", None)
        seen = inner[0] if inner else seen.__cause__
    return str(exc) or type(exc).__name__
