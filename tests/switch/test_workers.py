"""`serve --workers`: SO_REUSEPORT listeners, worker names and metrics ports."""

from __future__ import annotations

import trio
from forecourt.switch.workers import reuseport_listener, worker_metrics_port, worker_node


async def test_two_listeners_share_one_port() -> None:
    first = await reuseport_listener("127.0.0.1", 0)
    port = first.socket.getsockname()[1]
    second = await reuseport_listener("127.0.0.1", port)  # a second worker binds the same port
    try:
        accepted: list[int] = []

        async def accept(listener: trio.SocketListener, n: int) -> None:
            while True:
                stream = await listener.accept()
                accepted.append(n)
                await stream.aclose()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(accept, first, 1)
            nursery.start_soon(accept, second, 2)
            for _ in range(40):
                stream = await trio.open_tcp_stream("127.0.0.1", port)
                await stream.aclose()
            with trio.fail_after(5):
                while len(accepted) < 40:
                    await trio.sleep(0.01)
            nursery.cancel_scope.cancel()
        assert set(accepted) == {1, 2}  # the kernel spread the connections
    finally:
        await first.aclose()
        await second.aclose()


def test_worker_names_and_ports_differ() -> None:
    assert [worker_node("fc1", i) for i in (1, 2)] == ["fc1-w1", "fc1-w2"]
    assert [worker_metrics_port(9108, i) for i in (1, 2)] == [9108, 9109]
    assert worker_metrics_port(0, 2) == 0  # no metrics endpoint stays none
