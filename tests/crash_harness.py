"""One harness for the tests that run `forecourt serve` as a real process and kill it.

What the kill -9 tests (and the other process tests) share: a key store made by
`forecourt keys init`, a config written from the same few tables, the switch started
on it as a real process with its output kept, a wait until it listens (and its links
are up), load sent while it is killed -9 at a chosen point, a restart on the same
data directory, a clean stop, and a wait until the journal holds no work left. Each
test keeps its own load, its own kill point and its own assertions.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import IO, Protocol

import trio
from forecourt.switch.journal.model import PARKED_HORIZON_S

__all__ = [
    "FINAL",
    "FORECOURT",
    "KILLED",
    "START_S",
    "acquirer",
    "bank_link",
    "connect",
    "drained",
    "init_keys",
    "kill_9",
    "kill_9_under_load",
    "links_up",
    "saf_config",
    "serve_config",
    "serving",
    "stop",
    "until_killed",
]

FORECOURT = [sys.executable, "-m", "forecourt.switch.cli"]
START_S = 20.0  # a `forecourt serve` start, on a machine other test runs share
FINAL = frozenset({"approved", "declined", "reversed", "failed", "answered_locally"})
# what a terminal's side of a connection sees when the switch is killed -9 under it
KILLED = (trio.BrokenResourceError, trio.ClosedResourceError, OSError, EOFError)


def init_keys(data_dir: Path, lmk_file: Path | str, *extra: str) -> None:
    """`forecourt keys init`: the key store in `data_dir`, its LMK in `lmk_file`."""
    subprocess.run(
        [*FORECOURT, "keys", "init", "--data-dir", str(data_dir), "--lmk-file", str(lmk_file),
         *extra],
        check=True,
        capture_output=True,
    )  # fmt: skip


def _value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | Path):
        return f'"{value}"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    return repr(value)


def _keys(keys: Mapping[str, object]) -> str:
    return "".join(f"{k} = {_value(v)}\n" for k, v in keys.items() if v is not None)


def _table(header: str, keys: Mapping[str, object]) -> str:
    return f"{header}\n{_keys(keys)}"


def acquirer(**keys: object) -> str:
    """One `[[acquirers]]` table with these keys (None leaves a key out)."""
    return _table("[[acquirers]]", keys)


def bank_link(host_port: int, **keys: object) -> str:
    """The ISO 8583 acquirer `bank` at a host in the test, without MACs, reconnecting
    quickly and sending no echo tests."""
    return acquirer(
        mac=False,
        name="bank",
        host="127.0.0.1",
        port=host_port,
        echo_interval_s=0.0,
        reconnect_initial_s=0.05,
        **keys,
    )


def serve_config(
    data_dir: Path,
    port: int,
    *,
    node: str,
    terminals: Sequence[str] = ("T0000001",),
    default_route: str | None = "bank",
    database: str | None = None,
    lmk_file: Path | str | None = None,
    level: str = "warning",
    saf: Mapping[str, float] | None = None,
    dialect: str | None = "ifsf",
    max_in_flight: int | None = None,
    acquirers: str = "",
) -> str:
    """A switch with one terminal listener `pos` on 127.0.0.1:`port` for the group
    `site` (no terminal MACs), JSON logs, and the acquirers' tables as given."""
    head = {"node": node, "data_dir": data_dir, "database": database}
    parts = [_keys({**head, "default_route": default_route})]
    if lmk_file is not None:
        parts.append(_table("[keys]", {"lmk_file": lmk_file}))
    parts.append(_table("[logging]", {"level": level, "format": "json"}))
    if saf is not None:
        parts.append(_table("[saf]", saf))
    listener = {"name": "pos", "host": "127.0.0.1", "port": port, "dialect": dialect}
    parts.append(_table("[[listeners]]", {**listener, "terminal_group": "site"}))
    group = {"name": "site", "terminals": list(terminals), "mac_required": False}
    parts.append(_table("[[terminal_groups]]", {**group, "max_in_flight": max_in_flight}))
    parts.append(acquirers)
    return "".join(parts)


def saf_config(data_dir: Path, port: int, host_port: int, *, node: str, more: str = "") -> str:
    """One terminal behind the bank on one link whose requests time out in 1 s, SAF
    retrying every 0.2-0.5 s under a 30 s lease, logs at info: for the tests that kill
    the switch with SAF work queued. `more`: tables added after the acquirer."""
    link = bank_link(
        host_port, connections=1, request_timeout_s=1.0, reconnect_max_s=0.2,
        acquirer_id="12345678901",
    )  # fmt: skip
    saf = {"backoff_initial_s": 0.2, "backoff_max_s": 0.5, "lease_s": 30.0}
    return serve_config(
        data_dir, port, node=node, level="info", saf=saf, acquirers=link + more
    )  # fmt: skip


async def _end(process: trio.Process) -> None:
    """SIGTERM, and kill -9 after 10 s; nothing when it has exited already."""
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
        with trio.move_on_after(10):
            await process.wait()
        if process.returncode is None:
            process.kill()
            await process.wait()


@asynccontextmanager
async def serving(
    config: Path, *extra: str, log: Path | None = None, output: bytearray | None = None
) -> AsyncIterator[trio.Process]:
    """`forecourt serve --config CONFIG` as a real process, its output written to `log`,
    collected into `output`, or dropped. Ended (SIGTERM, then kill -9) when the block
    leaves it running: a failed assertion leaves no process behind."""
    with contextlib.ExitStack() as files:
        out: IO[bytes] | int = subprocess.DEVNULL
        if log is not None:
            out = files.enter_context(log.open("wb"))
        elif output is not None:
            out = subprocess.PIPE
        process = await trio.lowlevel.open_process(
            [*FORECOURT, "serve", "--config", str(config), *extra],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )

        async def collect() -> None:
            assert process.stdout is not None and output is not None
            while chunk := await process.stdout.receive_some(65536):
                output.extend(chunk)

        async with trio.open_nursery() as nursery:
            if output is not None:
                nursery.start_soon(collect)
            try:
                yield process
            finally:
                with trio.CancelScope(shield=True):
                    await _end(process)
                nursery.cancel_scope.deadline = trio.current_time() + 10  # the last output


async def connect(port: int, within_s: float = START_S) -> trio.SocketStream:
    """A connection to the switch's terminal port, once it listens."""
    with trio.fail_after(within_s):
        while True:
            try:
                return await trio.open_tcp_stream("127.0.0.1", port)
            except OSError:
                await trio.sleep(0.05)


class _Host(Protocol):
    @property
    def connections(self) -> int: ...


async def links_up(host: _Host, count: int, within_s: float = START_S) -> None:
    """The switch's links to a host in the test: `count` connections made (in all)."""
    with trio.fail_after(within_s):
        while host.connections < count:
            await trio.sleep(0.02)
    await trio.sleep(0.1)  # their sign-ons


@asynccontextmanager
async def until_killed(port: int) -> AsyncIterator[trio.SocketStream]:
    """A terminal's connection for load that runs until the switch is killed: what the
    kill does to the connection ends the block quietly."""
    stream = await connect(port)
    try:
        yield stream
    except KILLED:
        pass  # killed
    finally:
        await stream.aclose()


async def kill_9(process: trio.Process) -> None:
    process.kill()
    assert await process.wait() == -signal.SIGKILL


async def kill_9_under_load(
    process: trio.Process,
    load: Sequence[Callable[[], Awaitable[object]]],
    *,
    after_s: float,
    once: Callable[[], bool] = lambda: True,
    within_s: float = START_S,
) -> None:
    """Start every task of `load`, wait until `once()` holds (the switch is up and
    answering), `after_s` more, then kill -9 the switch with the load in flight.
    Returns when every load task has ended (each sees its connection go)."""
    async with trio.open_nursery() as traffic:
        for task in load:
            traffic.start_soon(task)
        with trio.fail_after(within_s):
            while not once():
                await trio.sleep(0.01)
        await trio.sleep(after_s)
        await kill_9(process)


async def stop(process: trio.Process) -> int:
    """SIGTERM: in-flight work drains; the exit code."""
    process.send_signal(signal.SIGTERM)
    with trio.fail_after(15):
        return await process.wait()


def _open_work(journal_db: Path) -> tuple[int, int]:
    """(transactions not final, SAF items still to deliver), read while the switch runs.

    An approved purchase keeps its reversal parked (due years ahead) until its shift
    closes: that is not work to do.
    """
    with contextlib.closing(sqlite3.connect(f"file:{journal_db}?mode=ro", uri=True)) as conn:
        marks = ", ".join(f"'{s}'" for s in FINAL)
        (open_rows,) = conn.execute(
            f"SELECT count(*) FROM transactions WHERE state NOT IN ({marks})"
        ).fetchone()
        (saf,) = conn.execute(
            "SELECT count(*) FROM saf WHERE state = 'in_flight' "
            "OR (state = 'pending' AND next_attempt_at < ?)",
            (time.time() + PARKED_HORIZON_S,),
        ).fetchone()
    return int(open_rows), int(saf)


async def drained(journal_db: Path, timeout: float = 15.0) -> None:
    """Every transaction final and SAF holding nothing due, in the restarted switch."""
    with trio.fail_after(timeout):
        while await trio.to_thread.run_sync(_open_work, journal_db) != (0, 0):
            await trio.sleep(0.1)
