"""One connection to an ISO 8583 acquirer host (TCP, or TLS over it), and the answers awaited.

A connection is one socket with its reader and its one `FrameWriter`. The answers
awaited are a map keyed by the authoriser's match key (for ISO 8583 the switch STAN
and the terminal id), shared by every connection of a link: a host may answer on
another connection than the one that carried the request, so any connection's
reader delivers into it. An answer that matches nothing is never delivered to
another request: it is late when its STAN is in the allocator's quarantine (its
request timed out, its reversal is already queued), otherwise unmatched.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable, Hashable
from typing import Protocol

import attrs
import structlog
import trio
from forecourt.codecs.dialect import (
    Dialect,
    decode,
    encode,
    encode_for_mac,
    mac_input,
    put_mac,
)
from forecourt.codecs.errors import CodecError
from forecourt.codecs.framing import FrameDecoder, Framing, encode_frame
from forecourt.codecs.message import Message
from forecourt.codecs.mti import response_mti
from forecourt.keys.security_module import ModuleError, ModuleUnavailable
from forecourt.switch.authoriser import (
    Answer,
    AuthoriserKeysUnavailable,
    AuthoriserTimeout,
    AuthoriserUnavailable,
    BeforeSend,
)
from forecourt.switch.direct_write import FrameWriter
from forecourt.switch.matching import StanAllocator
from forecourt.switch.metrics import SwitchMetrics
from forecourt.switch.tls import TlsHandshakeFailed, handshake_failure_reason

__all__ = ["AcquirerConnection", "AwaitedAnswers", "MacKey", "ZoneMac", "connect"]

log = structlog.get_logger("forecourt.authorisers.iso8583")

_LOST = (trio.BrokenResourceError, trio.ClosedResourceError, OSError)


async def connect(
    host: str, port: int, tls: ssl.SSLContext | None = None, server_name: str | None = None
) -> trio.abc.Stream:
    """A stream to the host: TCP, then with `tls` the handshake, done before it is handed on.

    The host's certificate chain and name (`server_name`, else `host`) are checked
    by the context; a failed handshake is `TlsHandshakeFailed`, a failed TCP connect
    stays an OSError, so the two read differently in the log.
    """
    stream = await trio.open_tcp_stream(host, port)
    if tls is None:
        return stream
    secured = trio.SSLStream(stream, tls, server_hostname=server_name or host)
    try:
        await secured.do_handshake()
    except (trio.BrokenResourceError, ssl.SSLError, OSError) as exc:
        await trio.aclose_forcefully(stream)
        raise TlsHandshakeFailed(handshake_failure_reason(exc)) from exc
    except BaseException:
        await trio.aclose_forcefully(stream)
        raise
    return secured


class MacKey(Protocol):
    """The link's ZAK, in the security module (switch/terminal_keys.ZoneMac)."""

    async def generate(self, data: bytes) -> bytes: ...

    async def verify(self, data: bytes, mac: bytes) -> bool: ...


@attrs.frozen
class ZoneMac:
    """The MAC of the acquirer leg under the link's ZAK, both ways: requests, SAF
    advices and reversals out, answers in.

    `zak` is asked at each use, so a key change reaches the next message; None (no
    MAC configured, or no key yet) sends unMAC'd and accepts any answer.
    """

    zak: Callable[[], MacKey | None] | None = None

    async def encode(self, link: str, dialect: Dialect, message: Message) -> bytes:
        """`message` encoded and MAC'd. AuthoriserKeysUnavailable when the module
        cannot MAC it: nothing is sent unMAC'd."""
        zak = self.zak() if self.zak is not None else None
        if zak is None:
            return encode(dialect, message)
        raw = encode_for_mac(dialect, message)
        try:
            code = await zak.generate(mac_input(raw))
        except ModuleError as exc:  # the caller logs it (flow, SAF sender, day close)
            raise AuthoriserKeysUnavailable(
                link, exc.code, unavailable=isinstance(exc, ModuleUnavailable)
            ) from None
        return put_mac(raw, code)

    async def verifies(self, message: Message, payload: bytes) -> bool:
        """Whether the answer's MAC verifies; an answer the module cannot verify
        (unreachable, key refused) is not taken, as one whose MAC is wrong (counted and
        logged as such; the module's own status says why: /healthz, /metrics)."""
        zak = self.zak() if self.zak is not None else None
        if zak is None:
            return True
        mac_hex = message.fields.get("128") or message.fields.get("64")
        if mac_hex is None:
            return False
        try:
            return await zak.verify(mac_input(payload), bytes.fromhex(mac_hex))
        except ModuleError:
            return False


@attrs.define(eq=False)
class Awaited:
    """One request waiting for its answer."""

    key: Hashable
    expected_mti: str
    event: trio.Event = attrs.field(factory=trio.Event)
    answer: Message | None = None


class AwaitedAnswers:
    """The requests of one link waiting for an answer, by match key."""

    def __init__(
        self,
        link: str,
        match_key: Callable[[Message], Hashable],
        stans: StanAllocator,
        mac: ZoneMac,
        metrics: SwitchMetrics,
    ) -> None:
        self._link = link
        self._match_key = match_key
        self._stans = stans
        self._mac = mac
        self._metrics = metrics
        self._waiting: dict[Hashable, Awaited] = {}

    def __len__(self) -> int:
        return len(self._waiting)

    def expect(self, request: Message) -> Awaited:
        awaited = Awaited(self._match_key(request), response_mti(request.mti))
        self._waiting[awaited.key] = awaited
        return awaited

    def forget(self, awaited: Awaited) -> None:
        del self._waiting[awaited.key]

    async def deliver(self, message: Message, payload: bytes) -> None:
        """Hand an answer to the request it matches; count and log one that matches none.

        Its MAC is verified here, in the reader, before it is handed on: with the
        software module the call never suspends; with a device it is one command
        per answer, in order, on this connection."""
        awaited = self._waiting.get(self._match_key(message))
        if awaited is None or awaited.answer is not None or message.mti != awaited.expected_mti:
            stan = message.fields.get("11")
            kind = "late" if self._stans.quarantined(stan) else "unmatched"
            self._metrics.unmatched_answers.labels(link=self._link, kind=kind).inc()
            log.warning(
                f"acquirer_{kind}_answer",
                link=self._link,
                mti=message.mti,
                link_stan=stan,
                action_code=message.fields.get("39"),
            )
            return
        if self._mac.zak is not None and not await self._mac.verifies(message, payload):
            self._metrics.mac_failures.labels(side="acquirer").inc()
            log.warning(
                "acquirer_mac_mismatch", link=self._link, link_stan=message.fields.get("11")
            )
            return
        awaited.answer = message
        awaited.event.set()


class AcquirerConnection:
    """One socket to the host: its writer, its reader, and exchanges over it."""

    def __init__(
        self,
        number: int,
        stream: trio.abc.Stream,
        *,
        link: str,
        dialect: Dialect,
        framing: Framing,
        answers: AwaitedAnswers,
        mac: ZoneMac,
        metrics: SwitchMetrics,
    ) -> None:
        self.number = number
        self.stream = stream
        self.writer = FrameWriter(stream)
        self._link = link
        self._dialect = dialect
        self._framing = framing
        self._answers = answers
        self._mac = mac
        self._metrics = metrics
        # why the stream broke, when it did (a TLS 1.3 host refuses a client
        # certificate only after the handshake, on the first read)
        self.failure: BaseException | None = None

    async def exchange(
        self, request: Message, limit: float, before_send: BeforeSend | None = None
    ) -> Answer:
        """Send `request` (its link STAN already in field 11) and wait up to `limit` s.

        `before_send` runs after the request is awaited and before anything leaves.
        AuthoriserUnavailable: the write failed; AuthoriserTimeout: no answer in time.
        """
        awaited = self._answers.expect(request)
        try:
            # MAC'd first: a request the module cannot MAC is not journalled as sent
            payload = await self._mac.encode(self._link, self._dialect, request)
            if before_send is not None:
                await before_send(request)
            frame = encode_frame(self._framing, payload)
            started = time.perf_counter()
            try:
                await self.writer.send(frame)
            except _LOST as exc:
                raise AuthoriserUnavailable(self._link) from exc
            with trio.move_on_after(limit):
                await awaited.event.wait()
            if awaited.answer is None:
                raise AuthoriserTimeout(self._link)
            return Answer(awaited.answer, time.perf_counter() - started, request.fields["11"])
        finally:
            self._answers.forget(awaited)

    async def read_answers(self) -> None:
        """Deliver every answer that arrives; return when the stream ends or breaks."""
        decoder = FrameDecoder(self._framing)
        try:
            while True:
                data = await self.stream.receive_some(65536)
                if not data:
                    log.warning("acquirer_closed_connection", link=self._link)
                    return
                for frame in decoder.feed(data):
                    await self._on_frame(frame.payload)
        except CodecError as exc:
            self._metrics.malformed.labels(side="acquirer", reason=type(exc).__name__).inc()
            log.warning("acquirer_bad_frame", link=self._link, error=str(exc))
        except _LOST as exc:
            self.failure = exc
            log.warning("acquirer_read_failed", link=self._link, error=type(exc).__name__)

    async def _on_frame(self, payload: bytes) -> None:
        try:
            message = decode(self._dialect, payload)
        except CodecError as exc:
            self._metrics.malformed.labels(side="acquirer", reason=type(exc).__name__).inc()
            log.warning("acquirer_undecodable_answer", link=self._link, error=str(exc))
            return
        await self._answers.deliver(message, payload)

    async def aclose(self) -> None:
        """Close the writer first: once the stream is closed its descriptor may be reused."""
        self.writer.close()
        with trio.CancelScope(shield=True):
            await self.stream.aclose()
