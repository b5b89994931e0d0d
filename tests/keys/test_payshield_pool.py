"""The backend's connection side against the simulator over real TCP: the
in-flight cap, deadlines as cancel scopes, reconnect after the HSM restarts, and
the status /healthz shows."""

from __future__ import annotations

import functools

import pytest
import trio
from forecourt.keys.lmk import Lmk
from forecourt.keys.security_module import ModuleError, ModuleUnavailable

from tests.keys.payshield_rig import module_for, running_sim


async def test_in_flight_cap_is_honoured(nursery: trio.Nursery) -> None:
    async with (
        running_sim(nursery, delay_s=0.05) as rig,
        module_for(rig.port, connections=6, in_flight=2, timeout_s=5.0) as hsm,
    ):
        seen: list[int] = []

        async def one(i: int) -> None:
            assert await hsm.echo(b"%d" % i) == b"%d" % i
            seen.append(hsm.pool.in_flight)

        async with trio.open_nursery() as callers:
            for i in range(12):
                callers.start_soon(one, i)
            await trio.sleep(0.02)
            assert hsm.status()["in_flight"] == 2
        assert rig.sim.most_in_progress == 2  # never more than the cap at the HSM
        assert hsm.pool.connected <= 2  # the cap also bounds the connections opened
        assert len(seen) == 12


async def test_connections_bound_concurrency_under_a_larger_cap(nursery: trio.Nursery) -> None:
    async with (
        running_sim(nursery, delay_s=0.05) as rig,
        module_for(rig.port, connections=3, in_flight=10, timeout_s=5.0) as hsm,
    ):
        async with trio.open_nursery() as callers:
            for _ in range(9):
                callers.start_soon(hsm.echo, b"x")
        assert rig.sim.most_in_progress == 3
        assert rig.sim.connections_accepted == 3


async def test_deadline_cancels_and_the_connection_is_not_reused(nursery: trio.Nursery) -> None:
    async with (
        running_sim(nursery, delay_s=0.3) as rig,
        module_for(rig.port, timeout_s=0.05) as hsm,
    ):
        before = trio.current_time()
        with pytest.raises(ModuleUnavailable) as late:
            await hsm.echo(b"late")
        assert trio.current_time() - before < 0.25
        assert late.value.code == "deadline"
        assert hsm.pool.connected == 0  # closed mid-exchange, never handed out again
        assert hsm.status()["errors"]["unavailable"] == 1
        # the caller's own, shorter scope is a deadline too
        with trio.move_on_after(0.01) as scope:
            await hsm.echo(b"later")
        assert scope.cancelled_caught and hsm.pool.connected == 0


async def test_reconnect_after_the_hsm_restarts(nursery: trio.Nursery) -> None:
    lmk = Lmk.generate()
    async with running_sim(nursery, lmk=lmk) as rig:
        port = rig.port
        hsm = module_for(port, timeout_s=1.0)
        assert await hsm.echo(b"one") == b"one"
    await trio.sleep(0.05)  # the simulator is gone: its listener and connection closed
    with pytest.raises(ModuleUnavailable) as down:
        await hsm.echo(b"two")
    assert down.value.code == "connection"
    assert hsm.status()["available"] is False and "connect" in hsm.status()["last_failure"]
    async with running_sim(nursery, lmk=lmk, port=port) as again:
        assert again.port == port
        with trio.fail_after(3):
            while True:  # the backoff lets a connect through within its period
                try:
                    assert await hsm.echo(b"three") == b"three"
                    break
                except ModuleUnavailable:
                    await trio.sleep(0.02)
        assert hsm.status()["available"] is True
        await hsm.aclose()


async def test_an_idle_connection_the_hsm_closed_is_replaced_at_once(
    nursery: trio.Nursery,
) -> None:
    lmk = Lmk.generate()
    async with running_sim(nursery, lmk=lmk) as rig:
        port = rig.port
        hsm = module_for(port)
        await hsm.echo(b"one")
    async with running_sim(nursery, lmk=lmk, port=port):
        # the pooled connection is dead; the command goes once more on a new one
        assert await hsm.echo(b"two") == b"two"
        await hsm.aclose()


async def test_a_reply_to_another_request_is_refused(nursery: trio.Nursery) -> None:
    async def wrong_header(stream: trio.SocketStream) -> None:
        # a test double: an HSM that answers with another request's header cannot
        # be made from the simulator, which always echoes correctly
        await stream.receive_some(1024)
        await stream.send_all(b"\x00\x089999B300")

    listeners = await nursery.start(
        functools.partial(trio.serve_tcp, host="127.0.0.1"), wrong_header, 0
    )
    port = listeners[0].socket.getsockname()[1]
    async with module_for(port) as hsm:
        with pytest.raises(ModuleError) as refused:
            await hsm.echo(b"x")
        assert refused.value.code == "reply" and not isinstance(refused.value, ModuleUnavailable)
        assert hsm.pool.connected == 0
