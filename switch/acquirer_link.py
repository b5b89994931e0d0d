"""An acquirer link: a pool of TCP connections to one host, with switch-side STANs.

The link owns its connections, its STAN allocator and the table of requests waiting
for an answer. Any connection may carry the answer to any request of the link; an
answer is matched by the switch STAN and the terminal id, and one that matches
nothing is late or a duplicate: it is counted and logged, never delivered to another
request. A request that timed out has already had its reversal queued by the caller,
so a late approval is covered by that reversal.
"""

from __future__ import annotations

import itertools
import math
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import attrs
import structlog
import trio
from forecourt.codecs.dialect import Dialect, decode, encode, encode_with_mac, mac_input
from forecourt.codecs.errors import CodecError
from forecourt.codecs.family import Family
from forecourt.codecs.framing import FrameDecoder, Framing, encode_frame
from forecourt.codecs.message import Message
from forecourt.codecs.mti import response_mti
from forecourt.codecs.network import NetworkFunction, network_request
from forecourt.switch.authoriser import (
    Answer,
    AuthoriserBusy,
    AuthoriserError,
    AuthoriserTimeout,
    AuthoriserUnavailable,
    BeforeSend,
)
from forecourt.switch.direct_write import FrameWriter
from forecourt.switch.matching import StanAllocator, StanExhausted
from forecourt.switch.metrics import SwitchMetrics

log = structlog.get_logger("forecourt.acquirer_link")


class LinkError(AuthoriserError):
    """Base of the reasons a request could not be exchanged with the host."""


class LinkUnavailable(LinkError, AuthoriserUnavailable):
    """No connection to the host is up (the terminal gets 912/91)."""


class LinkBusy(LinkUnavailable, AuthoriserBusy):
    """The link's in-flight cap is reached (912/91 at once, no queueing)."""


class HostTimeout(LinkError, AuthoriserTimeout):
    """The host did not answer within the request timeout (911/91)."""


class MacKey(Protocol):
    def generate(self, data: bytes) -> bytes: ...

    def verify(self, data: bytes, mac: bytes) -> bool: ...


@attrs.frozen
class LinkSettings:
    """What the link needs from the configuration, in one place."""

    name: str
    host: str
    port: int
    dialect: Dialect
    framing: Framing
    connections: int = 1
    max_in_flight: int = 1000
    request_timeout_s: float = 10.0
    echo_interval_s: float = 0.0
    sign_on: bool = False
    reconnect_initial_s: float = 0.2
    reconnect_max_s: float = 10.0
    acquirer_id: str | None = None
    connect_timeout_s: float = 5.0


@attrs.frozen
class HostAnswer:
    message: Message
    host_seconds: float
    link_stan: str


@attrs.define(eq=False)
class _Waiting:
    terminal_id: str | None
    expected_mti: str
    event: trio.Event = attrs.field(factory=trio.Event)
    answer: Message | None = None


class _Connection:
    def __init__(self, number: int, stream: trio.abc.Stream) -> None:
        self.number = number
        self.stream = stream
        self.writer = FrameWriter(stream)

    async def send(self, frame: bytes) -> None:
        await self.writer.send(frame)


class AcquirerLink:
    def __init__(
        self,
        settings: LinkSettings,
        metrics: SwitchMetrics,
        zak: Callable[[], MacKey | None] | None = None,
    ) -> None:
        self.settings = settings
        self._metrics = metrics
        self._zak = zak
        self._timed_out: dict[str, float] = {}
        self._stans = StanAllocator(
            quarantine_s=max(60.0, 10 * settings.request_timeout_s), start=random.randrange(999_999)
        )
        self._waiting: dict[str, _Waiting] = {}
        self._connections: list[_Connection] = []
        self._rr = itertools.count()
        self._connection_numbers = itertools.count(1)
        self._family = settings.dialect.family
        self._mac_field = "64"

    # -- state -----------------------------------------------------------------

    @property
    def name(self) -> str:
        return self.settings.name

    @property
    def connected(self) -> bool:
        return bool(self._connections)

    @property
    def in_flight(self) -> int:
        return len(self._waiting)

    # -- the Authoriser protocol -------------------------------------------------

    kind = "iso8583"

    @property
    def family(self) -> Family:
        return self.settings.dialect.family

    @property
    def acquirer_id(self) -> str | None:
        return self.settings.acquirer_id

    @property
    def available(self) -> bool:
        return bool(self._connections)

    @property
    def request_timeout_s(self) -> float:
        return self.settings.request_timeout_s

    @property
    def max_in_flight(self) -> int:
        return self.settings.max_in_flight

    def match_key(self, message: Message) -> tuple[str | None, str | None]:
        return (message.fields.get("11"), message.fields.get("41"))

    async def authorise(
        self,
        request: Message,
        *,
        before_send: BeforeSend | None = None,
        timeout: float | None = None,
    ) -> Answer:
        answer = await self.exchange(request, before_send=before_send, timeout=timeout)
        return Answer(answer.message, answer.host_seconds, answer.link_stan)

    # -- running ---------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Keep `connections` connections up until cancelled."""
        async with trio.open_nursery() as nursery:
            for _ in range(max(1, self.settings.connections)):
                nursery.start_soon(self._keep_connected)
            task_status.started()

    async def _keep_connected(self) -> None:
        delay = self.settings.reconnect_initial_s
        while True:
            try:
                with trio.fail_after(self.settings.connect_timeout_s):
                    stream = await trio.open_tcp_stream(self.settings.host, self.settings.port)
            except (OSError, trio.TooSlowError) as exc:
                log.warning("acquirer_connect_failed", link=self.name, error=type(exc).__name__)
                await trio.sleep(delay * random.uniform(0.8, 1.2))
                delay = min(self.settings.reconnect_max_s, delay * 2)
                continue
            connection = _Connection(next(self._connection_numbers), stream)
            try:
                await self._serve_connection(connection)
            finally:
                if connection in self._connections:
                    self._connections.remove(connection)
                self._publish_state()
                connection.writer.close()  # its descriptor may be reused once closed
                with trio.CancelScope(shield=True):
                    await stream.aclose()
            delay = self.settings.reconnect_initial_s
            await trio.sleep(delay * random.uniform(0.5, 1.0))

    async def _serve_connection(self, connection: _Connection) -> None:
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._read_answers, connection, nursery.cancel_scope)
                if self.settings.sign_on:
                    answer = await self._network(NetworkFunction.SIGN_ON, connection)
                    if answer is None:
                        log.warning("acquirer_sign_on_failed", link=self.name)
                        nursery.cancel_scope.cancel()
                        return
                self._connections.append(connection)
                self._publish_state()
                log.info("acquirer_connected", link=self.name, connection=connection.number)
                if self.settings.echo_interval_s > 0:
                    nursery.start_soon(self._echo, connection, nursery.cancel_scope)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            log.warning("acquirer_connection_lost", link=self.name, error=type(exc).__name__)

    def _publish_state(self) -> None:
        self._metrics.link_connections.labels(link=self.name).set(len(self._connections))

    async def _echo(self, connection: _Connection, scope: trio.CancelScope) -> None:
        while True:
            await trio.sleep(self.settings.echo_interval_s)
            if await self._network(NetworkFunction.ECHO, connection) is None:
                log.warning("acquirer_echo_failed", link=self.name, connection=connection.number)
                scope.cancel()
                return

    async def _network(self, function: NetworkFunction, connection: _Connection) -> Message | None:
        stan = self._stans.allocate()
        request = network_request(self._family, function, stan)
        try:
            answer = await self._exchange_on(connection, request, stan, None)
        except (LinkError, trio.BrokenResourceError, trio.ClosedResourceError):
            return None
        return answer.message

    async def _read_answers(self, connection: _Connection, scope: trio.CancelScope) -> None:
        decoder = FrameDecoder(self.settings.framing)
        try:
            while True:
                data = await connection.stream.receive_some(65536)
                if not data:
                    log.warning("acquirer_closed_connection", link=self.name)
                    break
                for frame in decoder.feed(data):
                    await self._on_frame(frame.payload)
        except CodecError as exc:
            self._metrics.malformed.labels(side="acquirer", reason=type(exc).__name__).inc()
            log.warning("acquirer_bad_frame", link=self.name, error=str(exc))
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            log.warning("acquirer_read_failed", link=self.name, error=type(exc).__name__)
        scope.cancel()

    async def _on_frame(self, payload: bytes) -> None:
        try:
            message = decode(self.settings.dialect, payload)
        except CodecError as exc:
            self._metrics.malformed.labels(side="acquirer", reason=type(exc).__name__).inc()
            log.warning("acquirer_undecodable_answer", link=self.name, error=str(exc))
            return
        stan = message.fields.get("11")
        waiting = self._waiting.get(stan) if stan is not None else None
        if (
            waiting is None
            or waiting.answer is not None
            or message.mti != waiting.expected_mti
            or (waiting.terminal_id is not None and message.fields.get("41") != waiting.terminal_id)
        ):
            late = stan is not None and stan in self._timed_out
            kind = "late" if late else "unmatched"
            self._metrics.unmatched_answers.labels(link=self.name, kind=kind).inc()
            log.warning(
                f"acquirer_{kind}_answer",
                link=self.name,
                mti=message.mti,
                link_stan=stan,
                action_code=message.fields.get("39"),
            )
            return
        if self._zak is not None and not self._verify_mac(message, payload):
            self._metrics.mac_failures.labels(side="acquirer").inc()
            log.warning("acquirer_mac_mismatch", link=self.name, link_stan=stan)
            return
        waiting.answer = message
        waiting.event.set()

    def _verify_mac(self, message: Message, payload: bytes) -> bool:
        zak = self._zak() if self._zak is not None else None
        if zak is None:
            return True
        mac_hex = message.fields.get("128") or message.fields.get("64")
        if mac_hex is None:
            return False
        return zak.verify(mac_input(payload), bytes.fromhex(mac_hex))

    def _note_timeout(self, stan: str) -> None:
        now = time.monotonic()
        self._timed_out[stan] = now + self._stans.quarantine_s
        if len(self._timed_out) > 10_000:
            self._timed_out = {k: v for k, v in self._timed_out.items() if v > now}

    # -- exchanging --------------------------------------------------------------

    def _pick(self) -> _Connection:
        if not self._connections:
            raise LinkUnavailable(self.name)
        return self._connections[next(self._rr) % len(self._connections)]

    async def exchange(
        self,
        request: Message,
        *,
        before_send: Callable[[Message], Awaitable[None]] | None = None,
        timeout: float | None = None,
    ) -> HostAnswer:
        """Send a request with a switch STAN and wait for its answer.

        The caller's field 11 is replaced; the answer comes back with the switch STAN
        in field 11 and the caller restores its own. `before_send` gets the message as
        the host will see it (switch STAN in field 11) and runs before anything leaves,
        so the journal holds it durably first.
        """
        if len(self._waiting) >= self.settings.max_in_flight:
            raise LinkBusy(self.name)
        connection = self._pick()
        try:
            stan = self._stans.allocate()
        except StanExhausted as exc:
            raise LinkBusy(self.name) from exc
        updates: dict[int, str | None] = {11: stan}
        if self.settings.acquirer_id is not None and "32" not in request.fields:
            updates[32] = self.settings.acquirer_id
        return await self._exchange_on(
            connection, request.with_fields(updates), stan, timeout, before_send
        )

    async def _exchange_on(
        self,
        connection: _Connection,
        request: Message,
        stan: str,
        timeout: float | None,
        before_send: Callable[[Message], Awaitable[None]] | None = None,
    ) -> HostAnswer:
        waiting = _Waiting(request.fields.get("41"), response_mti(request.mti))
        self._waiting[stan] = waiting
        answered = False
        try:
            if before_send is not None:
                await before_send(request)
            zak = self._zak() if self._zak is not None else None
            if zak is not None:
                payload = encode_with_mac(self.settings.dialect, request, zak.generate)
            else:
                payload = encode(self.settings.dialect, request)
            started = time.perf_counter()
            try:
                await connection.send(encode_frame(self.settings.framing, payload))
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
                raise LinkUnavailable(self.name) from exc
            limit = self.settings.request_timeout_s if timeout is None else timeout
            with trio.move_on_after(limit if math.isfinite(limit) else math.inf):
                await waiting.event.wait()
            if waiting.answer is None:
                self._note_timeout(stan)
                raise HostTimeout(self.name)
            answered = True
            return HostAnswer(waiting.answer, time.perf_counter() - started, stan)
        finally:
            del self._waiting[stan]
            self._stans.release(stan, quarantine=not answered)


def link_settings(config: Any, dialect: Dialect, framing: Framing) -> LinkSettings:
    """Build the link's settings from an acquirer config section."""
    return LinkSettings(
        name=config.name,
        host=config.host,
        port=config.port,
        dialect=dialect,
        framing=framing,
        connections=config.connections,
        max_in_flight=config.max_in_flight,
        request_timeout_s=config.request_timeout_s,
        echo_interval_s=config.echo_interval_s,
        sign_on=config.sign_on,
        reconnect_initial_s=config.reconnect_initial_s,
        reconnect_max_s=config.reconnect_max_s,
        acquirer_id=config.acquirer_id or None,
    )
