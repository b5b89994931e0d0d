"""Connection slots over real sockets: silent or refused-only connections never lock terminals out.

Clients bind other loopback addresses (127.0.0.2 ...) to be other sources; the
terminals that must still be served connect from 127.0.0.1.
"""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any

import pytest
import structlog
import trio
from forecourt.codecs.dialect import encode
from forecourt.codecs.network import NetworkFunction, network_request
from forecourt.switch.config import ConfigError
from forecourt.switch.log import configure_logging

from tests.switch.harness import SwitchUnderTest, Terminal, _unused_port, started_switch
from tests.switch.test_metrics import get

ATTACKER = "127.0.0.2"
REFUSED = "forecourt_connections_refused_total"


async def connect_from(sut: SwitchUnderTest, address: str) -> trio.SocketStream:
    return await trio.open_tcp_stream("127.0.0.1", sut.port, local_address=address)


async def closed_by_switch(stream: trio.SocketStream, timeout: float) -> bool:
    """True when the switch closes `stream` within `timeout` (whatever it sent first)."""
    with trio.move_on_after(timeout):
        try:
            while await stream.receive_some(65536):
                pass
        except trio.BrokenResourceError:
            pass
        return True
    return False


@asynccontextmanager
async def terminal_from(
    sut: SwitchUnderTest, address: str, terminal_id: str = "T0000001"
) -> AsyncIterator[Terminal]:
    stream = await connect_from(sut, address)
    async with stream:
        yield Terminal(stream, _dialect(sut), terminal_id, sut.terminal_keys.get(terminal_id))


def _dialect(sut: SwitchUnderTest) -> Any:
    from forecourt.codecs.dialect import get_dialect

    return get_dialect(sut.config.listeners[0].dialect)


async def served(sut: SwitchUnderTest, terminal_id: str = "T0000002") -> None:
    async with sut.terminal(terminal_id) as t:
        answer = await t.exchange(t.purchase(777))
        assert answer.fields["39"] == "000"


async def until_closed(send: Callable[[], Awaitable[None]], within: float) -> float | None:
    """Call `send` every 0.1 s until the switch closes the connection: seconds taken.

    None when it was still open after `within` seconds.
    """
    started = trio.current_time()
    with trio.move_on_after(within):
        try:
            while True:
                await send()
                await trio.sleep(0.1)
        except (EOFError, trio.BrokenResourceError, trio.ClosedResourceError):
            return trio.current_time() - started
    return None


def echo(t: Terminal) -> Any:
    return network_request(t.dialect.family, NetworkFunction.ECHO, t.next_stan(), t.terminal_id)


async def metric(sut: SwitchUnderTest, line: str) -> str:
    assert sut.running.metrics_port is not None
    status, _, body = await get(sut.running.metrics_port, "/metrics")
    assert status == 200
    return next((x for x in body.decode().splitlines() if x.startswith(line)), "")


# -- configuration -------------------------------------------------------------------


def test_listener_limits_are_read_and_checked(tmp_path: Path) -> None:
    from tests.switch.harness import switch_config

    config = switch_config(
        tmp_path,
        1,
        max_connections_per_address=5,
        first_frame_timeout_s=2.5,
        max_in_flight_per_connection=7,
    )
    listener = config.listeners[0]
    assert listener.max_connections_per_address == 5
    assert listener.first_frame_timeout_s == 2.5
    assert listener.max_in_flight_per_connection == 7
    defaults = switch_config(tmp_path, 1).listeners[0]
    assert defaults.max_connections_per_address == 0  # off: proxies and NAT share addresses
    assert defaults.first_frame_timeout_s == 10.0
    assert defaults.max_in_flight_per_connection == 32
    with pytest.raises(ConfigError, match=r"listeners\[0\]\.max_connections_per_address"):
        switch_config(tmp_path, 1, max_connections=10, max_connections_per_address=11)
    with pytest.raises(ConfigError, match=r"listeners\[0\]\.first_frame_timeout_s"):
        switch_config(tmp_path, 1, first_frame_timeout_s=0)
    with pytest.raises(ConfigError, match=r"listeners\[0\]\.max_in_flight_per_connection"):
        switch_config(tmp_path, 1, max_in_flight_per_connection=0)


# -- per-address cap -------------------------------------------------------------------


async def test_connections_per_address_are_capped(tmp_path: Path) -> None:
    async with started_switch(
        tmp_path, max_connections_per_address=3, first_frame_timeout_s=30.0
    ) as sut:
        held = [await connect_from(sut, ATTACKER) for _ in range(3)]
        try:
            extra = await connect_from(sut, ATTACKER)
            async with extra:
                assert await closed_by_switch(extra, timeout=2)
            # the cap is per address, not per listener: 127.0.0.1 is still served
            await served(sut)
            async with sut.terminal() as t:
                assert (await t.exchange(t.purchase(100))).fields["39"] == "000"
        finally:
            for stream in held:
                await stream.aclose()
        # slots come back when connections close
        with trio.fail_after(3):
            while True:
                again = await connect_from(sut, ATTACKER)
                async with again:
                    if not await closed_by_switch(again, timeout=0.2):
                        break


# -- first-frame deadline ------------------------------------------------------------------


async def test_silent_connection_is_closed_at_the_first_frame_deadline(tmp_path: Path) -> None:
    async with started_switch(
        tmp_path, first_frame_timeout_s=0.5, idle_timeout_s=30.0, metrics_port=_unused_port()
    ) as sut:
        stream = await connect_from(sut, ATTACKER)
        async with stream:
            assert await closed_by_switch(stream, timeout=3)
        counted = await metric(
            sut, 'forecourt_connections_closed_total{listener="pos",reason="first_frame_timeout"}'
        )
        assert counted.endswith(" 1.0")
        await served(sut)


async def test_only_refused_frames_are_closed_at_the_first_frame_deadline(tmp_path: Path) -> None:
    async with (
        started_switch(tmp_path, first_frame_timeout_s=1.0, idle_timeout_s=30.0) as sut,
        terminal_from(sut, ATTACKER, terminal_id="T0000009") as stranger,
    ):
        codes: list[str] = []

        async def refused() -> None:
            # an unknown terminal (109), a known one's frame that does not decode (904)
            codes.append((await stranger.exchange(stranger.purchase(100))).fields["39"])
            bad = encode(stranger.dialect, stranger.purchase(100).with_fields({41: "T0000001"}))
            await stranger.send_raw(len(bad[:-3]).to_bytes(2, "big") + bad[:-3])
            codes.append((await stranger.receive()).fields["39"])
            # a known terminal's request without its MAC (916, then 917 once locked)
            await impostor.send(impostor.purchase(100), mac=False)
            codes.append((await impostor.receive()).fields["39"])

        impostor = Terminal(stranger.stream, stranger.dialect, "T0000001", None)
        closed_after = await until_closed(refused, within=4.0)
        assert {"109", "904"} <= set(codes)
        assert {"916", "917"} & set(codes)
        assert closed_after is not None, "refused frames kept the connection open"
        assert closed_after < 3.0
        await served(sut)


async def test_an_accepted_first_frame_keeps_the_connection(tmp_path: Path) -> None:
    async with (
        started_switch(tmp_path, first_frame_timeout_s=0.5, idle_timeout_s=30.0) as sut,
        sut.terminal() as t,
    ):
        assert (await t.exchange(t.purchase(100))).fields["39"] == "000"
        await trio.sleep(1.0)  # past the first-frame deadline
        assert (await t.exchange(t.purchase(101))).fields["39"] == "000"


async def test_a_slow_first_request_is_not_cut_by_the_first_frame_deadline(
    tmp_path: Path,
) -> None:
    async with (
        started_switch(tmp_path, first_frame_timeout_s=0.5, request_timeout_s=5.0) as sut,
        sut.terminal() as t,
    ):
        # the host takes 2 s: the deadline passes with the request in hand
        assert (await t.exchange(t.purchase(200000))).fields["39"] == "000"
        assert (await t.exchange(t.purchase(102))).fields["39"] == "000"


# -- idle deadline -------------------------------------------------------------------------


async def test_refused_frames_do_not_push_the_idle_deadline(tmp_path: Path) -> None:
    async with started_switch(tmp_path, idle_timeout_s=1.0) as sut, sut.terminal() as t:
        assert (await t.exchange(t.purchase(100))).fields["39"] == "000"
        stranger = Terminal(t.stream, t.dialect, "T0000009", None)  # same connection

        async def refused() -> None:
            assert (await stranger.exchange(stranger.purchase(100))).fields["39"] == "109"

        closed_after = await until_closed(refused, within=4.0)
        assert closed_after is not None, "refusals pushed the idle deadline"
        assert closed_after < 2.5


async def test_accepted_frames_push_the_idle_deadline(tmp_path: Path) -> None:
    async with started_switch(tmp_path, idle_timeout_s=1.0) as sut, sut.terminal() as t:
        started = trio.current_time()
        while trio.current_time() - started < 2.5:
            assert (await t.exchange(echo(t))).fields["39"] == "800"
            await trio.sleep(0.3)
        assert (await t.exchange(t.purchase(100))).fields["39"] == "000"


# -- requests in flight per connection --------------------------------------------------------


async def test_pipelining_beyond_the_per_connection_cap_waits(tmp_path: Path) -> None:
    async with (
        started_switch(
            tmp_path, max_in_flight_per_connection=2, max_in_flight=10, request_timeout_s=5.0
        ) as sut,
        sut.terminal() as t,
    ):
        requests = [t.purchase(200000) for _ in range(3)]  # the host answers each after 2 s
        for request in requests:
            await t.send(request)
        await trio.sleep(0.7)
        at_host = [m for m in sut.host.received if m.fields.get("4") == "000000200000"]
        assert len(at_host) == 2, "the third request was read past the cap"
        answers = [await t.receive(timeout=6) for _ in requests]
        assert sorted(a.fields["11"] for a in answers) == sorted(r.fields["11"] for r in requests)
        assert {a.fields["39"] for a in answers} == {"000"}  # held back, not refused


# -- refusals logged as counts ---------------------------------------------------------------


def _events(out: io.StringIO, event: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in out.getvalue().splitlines() if line.startswith("{")]
    return [x for x in lines if x.get("event") == event]


async def test_refusals_are_logged_as_counts_per_interval(tmp_path: Path) -> None:
    out = io.StringIO()
    configure_logging("info", "json", stream=out)
    try:
        async with started_switch(
            tmp_path,
            max_connections=3,
            max_connections_per_address=1,
            first_frame_timeout_s=30.0,
            metrics_port=_unused_port(),
        ) as sut:
            held = [await connect_from(sut, ATTACKER)]
            try:
                for _ in range(20):  # 127.0.0.2 already holds its one connection
                    async with await connect_from(sut, ATTACKER) as refused:
                        assert await closed_by_switch(refused, timeout=2)
                held += [await connect_from(sut, a) for a in ("127.0.0.3", "127.0.0.4")]
                for _ in range(20):  # the listener is full
                    async with await connect_from(sut, "127.0.0.5") as refused:
                        assert await closed_by_switch(refused, timeout=2)
                for reason in ("per_address", "max_connections"):
                    line = (
                        f'forecourt_connections_refused_total{{listener="pos",reason="{reason}"}}'
                    )
                    assert (await metric(sut, line)).endswith(" 20.0")
            finally:
                for stream in held:
                    await stream.aclose()
    finally:
        structlog.reset_defaults()
    lines = _events(out, "connections_refused")
    for reason in ("per_address", "max_connections"):
        mine = [x for x in lines if x["reason"] == reason]
        assert sum(x["count"] for x in mine) == 20
        assert len(mine) <= 2, "one line per interval, not one per connection"
        assert all(x["listener"] == "pos" for x in mine)


# -- the contract ----------------------------------------------------------------------------


async def test_silent_connections_from_one_address_never_lock_out_another(
    tmp_path: Path,
) -> None:
    async with started_switch(
        tmp_path,
        max_connections=20,
        max_connections_per_address=5,
        first_frame_timeout_s=30.0,  # the address cap alone must do it
    ) as sut:
        held: list[trio.SocketStream] = []

        async def flood() -> None:
            while True:  # keep trying to open more silent connections from one address
                with suppress(OSError):
                    held.append(await connect_from(sut, ATTACKER))
                await trio.sleep(0.005)

        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(flood)
                await trio.sleep(0.3)
                for _ in range(5):
                    async with sut.terminal("T0000002") as t:  # from 127.0.0.1
                        assert (await t.exchange(t.purchase(777))).fields["39"] == "000"
                nursery.cancel_scope.cancel()
            assert len(held) > 20  # the flood really tried to fill the listener
        finally:
            for stream in held:
                await stream.aclose()


async def test_silent_connections_are_released_without_an_address_cap(tmp_path: Path) -> None:
    async with started_switch(tmp_path, max_connections=5, first_frame_timeout_s=0.5) as sut:
        held = [await connect_from(sut, ATTACKER) for _ in range(5)]
        try:
            # the listener is full of silent connections; within the first-frame
            # deadline they are closed and a terminal is served again
            with trio.fail_after(4):
                while True:
                    async with sut.terminal("T0000002") as t:
                        try:
                            answer = await t.exchange(t.purchase(777), timeout=0.5)
                        except (EOFError, trio.BrokenResourceError, trio.TooSlowError):
                            await trio.sleep(0.1)
                            continue
                    assert answer.fields["39"] == "000"
                    break
        finally:
            for stream in held:
                await stream.aclose()
