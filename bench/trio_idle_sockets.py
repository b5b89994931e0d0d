"""Does trio's run loop slow down with many idle sockets (and their deadlines)?

A round trip between two tasks over a socket pair, timed while N other tasks each wait
on an idle socket (optionally each inside its own cancel scope with a deadline, like a
terminal session's idle timeout). Prints one JSON object.

    .venv/bin/python bench/trio_idle_sockets.py --idle 9000 --deadlines
"""

from __future__ import annotations

import argparse
import json
import resource
import time

import trio


async def _idle(sock: trio.socket.SocketType, deadlines: bool) -> None:
    if deadlines:
        with trio.move_on_after(3600):
            await sock.recv(1)
    else:
        await sock.recv(1)


async def _measure(idle: int, deadlines: bool, trips: int) -> dict[str, float]:
    pairs = []
    async with trio.open_nursery() as nursery:
        for _ in range(idle):
            a, b = trio.socket.socketpair()
            pairs.append((a, b))
            nursery.start_soon(_idle, a, deadlines)
        x, y = trio.socket.socketpair()

        async def echo() -> None:
            while True:
                await y.send(await y.recv(100))

        nursery.start_soon(echo)
        await trio.sleep(0.5)
        wall, cpu = time.perf_counter(), time.process_time()
        for _ in range(trips):
            await x.send(b"x")
            await x.recv(100)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        nursery.cancel_scope.cancel()
    return {"round_trip_us": round(wall / trips * 1e6, 1), "cpu_us": round(cpu / trips * 1e6, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--idle", type=int, default=9000, help="idle sockets (2 fds each)")
    parser.add_argument("--deadlines", action="store_true")
    parser.add_argument("--trips", type=int, default=5000)
    args = parser.parse_args()
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    result = {"idle": args.idle, "deadlines": args.deadlines}
    result.update(trio.run(_measure, args.idle, args.deadlines, args.trips))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
