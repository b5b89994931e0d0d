"""The ISO 8583 authoriser (connection + pool) against a host on real sockets.

`HeldHost` answers sign-ons and echoes at once and holds every other request until
the test answers it, on the connection the test picks: so which answer arrives
when, and where, is the test's choice and nothing waits on a clock.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

import attrs
import pytest
import trio
from forecourt.codecs.dialect import Dialect, decode, encode, get_dialect
from forecourt.codecs.framing import FrameDecoder, Framing, encode_frame
from forecourt.codecs.message import Message
from forecourt.codecs.mti import response_mti
from forecourt.switch.authoriser import (
    Answer,
    Authoriser,
    AuthoriserBusy,
    AuthoriserTimeout,
    AuthoriserUnavailable,
)
from forecourt.switch.authorisers import AuthoriserDeps, build_authorisers
from forecourt.switch.authorisers.iso8583 import Iso8583Authoriser, LinkSettings
from forecourt.switch.config import AcquirerConfig, ConfigError
from forecourt.switch.metrics import SwitchMetrics

from tests.switch.harness import TEST_PAN, _unused_port, switch_config

IFSF = get_dialect("ifsf")


@attrs.frozen
class Held:
    """A request that reached the host, and the connection it came on."""

    connection: int
    message: Message


@attrs.define
class HeldHost:
    dialect: Dialect = IFSF
    port: int = 0
    streams: list[trio.SocketStream] = attrs.field(factory=list)
    network: int = 0  # sign-ons and echoes answered
    _send: trio.MemorySendChannel[Held] = attrs.field(init=False)
    _receive: trio.MemoryReceiveChannel[Held] = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self._send, self._receive = trio.open_memory_channel[Held](100)

    async def serve(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        self.port = listeners[0].socket.getsockname()[1]
        async with trio.open_nursery() as nursery:
            task_status.started(self.port)
            await trio.serve_listeners(self._connection, listeners, handler_nursery=nursery)

    async def _connection(self, stream: trio.SocketStream) -> None:
        number = len(self.streams)
        self.streams.append(stream)
        decoder = FrameDecoder(Framing())
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            while data := await stream.receive_some(65536):
                for frame in decoder.feed(data):
                    request = decode(self.dialect, frame.payload)
                    if request.mti == "1804":
                        self.network += 1
                        await self.answer(Held(number, request), code="800")
                    else:
                        await self._send.send(Held(number, request))

    async def next_request(self) -> Held:
        with trio.fail_after(5):
            return await self._receive.receive()

    def nothing_held(self) -> bool:
        return self._receive.statistics().current_buffer_used == 0

    async def answer(
        self,
        held: Held,
        *,
        on: int | None = None,
        code: str = "000",
        fields: Mapping[str, str] | None = None,
    ) -> None:
        """Answer `held` on connection `on` (default: the one it came on)."""
        answer = Message(
            response_mti(held.message.mti),
            {k: v for k, v in held.message.fields.items() if k != "2"}
            | {"39": code}
            | dict(fields or {}),
        )
        stream = self.streams[held.connection if on is None else on]
        await stream.send_all(encode_frame(Framing(), encode(self.dialect, answer)))


def purchase(terminal_id: str = "T0000001", stan: str = "000042") -> Message:
    return Message(
        "1200",
        {
            "2": TEST_PAN,
            "3": "000000",
            "4": "000000001000",
            "11": stan,
            "12": "261122093015",
            "41": terminal_id,
            "49": "978",
        },
    )


def settings(port: int, **over: object) -> LinkSettings:
    values: dict[str, object] = {
        "name": "bank",
        "host": "127.0.0.1",
        "port": port,
        "dialect": IFSF,
        "framing": Framing(),
        "connections": 2,
        "max_in_flight": 100,
        "request_timeout_s": 5.0,
        "sign_on": True,
        "reconnect_initial_s": 0.01,
        "reconnect_max_s": 0.05,
        "acquirer_id": "12345678901",
    }
    return LinkSettings(**(values | over))  # type: ignore[arg-type]


def connections(metrics: SwitchMetrics) -> float:
    value = metrics.registry.get_sample_value(
        "forecourt_acquirer_link_connections", {"link": "bank"}
    )
    return value or 0.0


def answers_counted(metrics: SwitchMetrics, kind: str) -> float:
    value = metrics.registry.get_sample_value(
        "forecourt_unmatched_answers_total", {"link": "bank", "kind": kind}
    )
    return value or 0.0


async def until_connections(metrics: SwitchMetrics, count: int) -> None:
    with trio.fail_after(5):
        while connections(metrics) != count:
            await trio.sleep(0.005)


@contextlib.asynccontextmanager
async def running(
    host: HeldHost, **over: object
) -> AsyncIterator[tuple[Iso8583Authoriser, SwitchMetrics]]:
    metrics = SwitchMetrics()
    async with trio.open_nursery() as nursery:
        port = await nursery.start(host.serve)
        link = Iso8583Authoriser(settings(port, **over), metrics)
        await nursery.start(link.run)
        await until_connections(metrics, settings(port, **over).connections)
        yield link, metrics
        nursery.cancel_scope.cancel()


def test_the_iso8583_authoriser_is_an_authoriser() -> None:
    # the annotation is the check: mypy refuses it if a member is missing or differs
    link: Authoriser = Iso8583Authoriser(settings(1), SwitchMetrics())
    assert (link.kind, link.name, link.family, link.acquirer_id) == (
        "iso8583",
        "bank",
        "1993",
        "12345678901",
    )
    assert (link.request_timeout_s, link.max_in_flight, link.available) == (5.0, 100, False)
    assert link.match_key(purchase("T0000009", "000007")) == ("000007", "T0000009")


@attrs.frozen
class LedgerAcquirer(AcquirerConfig):
    """An acquirer section of a kind the table does not know."""

    kind: str = "carrier-pigeon"


def test_build_authorisers_builds_each_acquirer_by_its_kind(tmp_path: Path) -> None:
    config = switch_config(tmp_path, 1)
    built = build_authorisers(config, AuthoriserDeps(SwitchMetrics()))
    assert list(built) == ["bank"]
    assert isinstance(built["bank"], Iso8583Authoriser)
    odd = attrs.evolve(config, acquirers=(LedgerAcquirer(**attrs.asdict(config.acquirers[0])),))
    with pytest.raises(ConfigError, match=r"acquirers\[0\]\.kind: unknown kind 'carrier-pigeon'"):
        build_authorisers(odd, AuthoriserDeps(SwitchMetrics()))


async def test_answers_are_matched_by_stan_and_terminal_id_across_connections() -> None:
    host = HeldHost()
    async with running(host) as (link, metrics):
        answers: dict[str, Answer] = {}

        async def authorise(terminal_id: str) -> None:
            answers[terminal_id] = await link.authorise(purchase(terminal_id))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(authorise, "T0000001")
            first = await host.next_request()
            nursery.start_soon(authorise, "T0000002")
            second = await host.next_request()
            assert {first.connection, second.connection} == {0, 1}  # one each
            # same terminal STAN 42 for both: the link gave each its own
            assert first.message.stan != second.message.stan
            assert first.message.fields["32"] == "12345678901"
            # the right STAN for the wrong terminal is nobody's answer
            await host.answer(first, on=second.connection, code="909", fields={"41": "T0000009"})
            # each answered on the other's connection
            await host.answer(second, on=first.connection, code="100")
            await host.answer(first, on=second.connection)
        assert answers["T0000001"].message.fields["39"] == "000"
        assert answers["T0000001"].message.fields["41"] == "T0000001"
        assert answers["T0000001"].reference == first.message.stan
        assert answers["T0000002"].message.fields["39"] == "100"
        assert answers["T0000002"].reference == second.message.stan
        assert answers_counted(metrics, "unmatched") == 1
        assert link.in_flight == 0


async def test_a_request_over_the_in_flight_cap_is_refused_busy() -> None:
    host = HeldHost()
    async with running(host, max_in_flight=1, connections=1) as (link, _):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(link.authorise, purchase("T0000001"))
            held = await host.next_request()
            with pytest.raises(AuthoriserBusy):
                await link.authorise(purchase("T0000003"))
            await host.answer(held)
        answer = await _answered(link, host, purchase("T0000002"))  # room again
        assert answer.message.fields["41"] == "T0000002"
        assert host.nothing_held()  # the refused one never left (it would have come first)


async def test_no_connection_is_unavailable_and_nothing_is_sent() -> None:
    metrics = SwitchMetrics()
    link = Iso8583Authoriser(settings(_unused_port()), metrics)
    sent: list[Message] = []

    async def before_send(message: Message) -> None:
        sent.append(message)

    async with trio.open_nursery() as nursery:
        await nursery.start(link.run)
        assert not link.available
        with pytest.raises(AuthoriserUnavailable) as caught:
            await link.authorise(purchase(), before_send=before_send)
        assert not isinstance(caught.value, AuthoriserBusy)
        assert TEST_PAN not in str(caught.value)
        nursery.cancel_scope.cancel()
    assert sent == []


async def test_a_late_answer_is_counted_late_and_an_unknown_one_unmatched() -> None:
    host = HeldHost()
    async with running(host, connections=1) as (link, metrics):
        with pytest.raises(AuthoriserTimeout):
            await link.authorise(purchase(), timeout=0)
        timed_out = await host.next_request()
        await host.answer(timed_out)  # after the timeout
        await _answered(link, host, purchase("T0000002"))  # the late one was read before
        assert (answers_counted(metrics, "late"), answers_counted(metrics, "unmatched")) == (1, 0)

        never_used = f"{(int(timed_out.message.fields['11']) + 500_000) % 999_999 + 1:06d}"
        await host.answer(timed_out, fields={"11": never_used})
        await _answered(link, host, purchase("T0000003"))
        assert (answers_counted(metrics, "late"), answers_counted(metrics, "unmatched")) == (1, 1)


async def test_the_pool_reconnects_after_the_host_closes() -> None:
    host = HeldHost()
    async with running(host, connections=1) as (link, metrics):
        await host.streams[0].aclose()
        with trio.fail_after(5):
            while host.network < 2:  # a new connection signed on
                await trio.sleep(0.005)
        await until_connections(metrics, 1)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(link.authorise, purchase())
            held = await host.next_request()
            assert held.connection == 1  # on the new connection, not the closed one
            await host.answer(held)
        assert len(host.streams) == 2


async def _answered(link: Iso8583Authoriser, host: HeldHost, request: Message) -> Answer:
    """Authorise `request`, the host answering it at once on its connection."""
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_answer_next, host)
        return await link.authorise(request)


async def _answer_next(host: HeldHost) -> None:
    await host.answer(await host.next_request())


def test_every_configured_kind_can_be_built() -> None:
    """The configuration's kinds and the table of factories name the same kinds."""
    from forecourt.switch.authorisers import KINDS
    from forecourt.switch.config import AUTHORISER_KINDS

    assert set(KINDS) == set(AUTHORISER_KINDS)
