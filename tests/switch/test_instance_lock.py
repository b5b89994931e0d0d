"""A second `forecourt serve` on a live data directory or node name touches nothing.

Real `forecourt serve` processes, a real SQLite data directory, a real PostgreSQL:
the second process exits 2 with one line before recovery, and the first's
transaction in flight is neither reversed at the host nor changed in the journal.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import trio
from forecourt.codecs.dialect import get_dialect
from forecourt.switch.instance_lock import (
    LOCK_FILE,
    InstanceInUse,
    InstanceLockError,
    lock_data_dir,
    lock_node,
    node_lock_key,
)

from tests import crash_harness as crash
from tests.switch.harness import SmallHost, Terminal, _unused_port

NEVER_ANSWERED = 300000  # SmallHost keeps it: in flight until the request times out
HOLDER = """
import sys, time
from pathlib import Path
from forecourt.switch.instance_lock import lock_data_dir, lock_node
if sys.argv[1] == "dir":
    lock = lock_data_dir(Path(sys.argv[2]))
else:
    lock = lock_node(sys.argv[2], sys.argv[3])
print("held", flush=True)
time.sleep(600)
"""


def _config(data_dir: Path, port: int, host_port: int, node: str, dsn: str | None = None) -> str:
    link = crash.bank_link(host_port, request_timeout_s=20.0)
    return crash.serve_config(data_dir, port, node=node, database=dsn, level="info", acquirers=link)


def _second_serve(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*crash.FORECOURT, "serve", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def _journal_snapshot(data_dir: Path) -> tuple[list[object], ...]:
    db = sqlite3.connect(f"file:{data_dir / 'journal.db'}?mode=ro", uri=True)
    try:
        return tuple(
            db.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()
            for table in ("transactions", "events", "saf")
        )
    finally:
        db.close()


def _states(data_dir: Path) -> list[str]:
    db = sqlite3.connect(f"file:{data_dir / 'journal.db'}?mode=ro", uri=True)
    try:
        return [row[0] for row in db.execute("SELECT state FROM transactions")]
    finally:
        db.close()


def _keys_init(data_dir: Path, dsn: str | None = None) -> None:
    # the LMK beside the data directory, never in it (serve finds it through the store)
    crash.init_keys(data_dir, data_dir.parent / "lmk.key", *(["--database", dsn] if dsn else []))


@pytest.mark.slow
async def test_second_serve_on_a_live_data_dir_exits_2_and_reverses_nothing(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    _keys_init(data_dir)
    host = SmallHost(get_dialect("ifsf"))
    async with trio.open_nursery() as nursery:
        host_port = await nursery.start(host.serve)
        port = _unused_port()
        config = tmp_path / "forecourt.toml"
        config.write_text(_config(data_dir, port, host_port, "solo"))
        async with crash.serving(config) as first:
            stream = await crash.connect(port)
            terminal = Terminal(stream, get_dialect("ifsf"), "T0000001", None)
            await terminal.send(terminal.purchase(NEVER_ANSWERED))
            with trio.fail_after(10):
                while not any(m.mti == "1200" for m in host.received):
                    await trio.sleep(0.05)
            before = _journal_snapshot(data_dir)
            assert _states(data_dir) == ["forwarded"]

            second = await trio.to_thread.run_sync(_second_serve, config)

            assert second.returncode == 2
            assert second.stderr.splitlines() == [
                f"forecourt serve: data directory {data_dir} is in use by another forecourt"
                f" serve (pid {first.pid}) — stop it first, or give this one another data_dir"
            ]
            await trio.sleep(1.0)  # a reversal sent by the second would have arrived
            assert [m.mti for m in host.received if m.mti[1] == "4"] == []
            assert _journal_snapshot(data_dir) == before  # row, events, parked reversal
            assert first.returncode is None
            await stream.aclose()
        nursery.cancel_scope.cancel()


@pytest.mark.slow
async def test_workers_share_the_data_dir_lock_and_keep_a_second_serve_out(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    _keys_init(data_dir)
    host = SmallHost(get_dialect("ifsf"))
    async with trio.open_nursery() as nursery:
        host_port = await nursery.start(host.serve)
        port = _unused_port()
        config = tmp_path / "forecourt.toml"
        config.write_text(_config(data_dir, port, host_port, "multi"))
        output = bytearray()
        async with crash.serving(config, "--workers", "2", output=output) as supervisor:
            with trio.fail_after(90):  # both workers up (slow on a shared machine): neither refused
                while not (b'"multi-w1"' in output and b'"multi-w2"' in output):
                    await trio.sleep(0.05)
                while output.count(b"switch_started") < 2:
                    await trio.sleep(0.05)
            stream = await crash.connect(port)
            terminal = Terminal(stream, get_dialect("ifsf"), "T0000001", None)
            answer = await terminal.exchange(terminal.purchase(1000), timeout=10)
            assert answer.fields["39"] == "000"
            await stream.aclose()
            second = await trio.to_thread.run_sync(_second_serve, config)
            assert second.returncode == 2
            assert f"(pid {supervisor.pid})" in second.stderr
            assert len(second.stderr.splitlines()) == 1
            assert b"worker_died_restarting" not in output
        assert supervisor.returncode == 0
        nursery.cancel_scope.cancel()


async def _holder(*args: str) -> trio.Process:
    process = await trio.lowlevel.open_process(
        [sys.executable, "-c", HOLDER, *args], stdout=subprocess.PIPE
    )
    assert process.stdout is not None
    said = b""
    with trio.fail_after(20):
        while not said.endswith(b"\n"):
            chunk = await process.stdout.receive_some(64)
            assert chunk, f"the holder exited: {said!r}"
            said += chunk
    assert said == b"held\n"
    return process


async def test_data_dir_lock_goes_with_a_killed_holder(tmp_path: Path) -> None:
    holder = await _holder("dir", str(tmp_path))
    try:
        with pytest.raises(InstanceInUse, match=rf"\(pid {holder.pid}\)"):
            lock_data_dir(tmp_path)
        assert (tmp_path / LOCK_FILE).stat().st_mode & 0o777 == 0o600
        holder.send_signal(signal.SIGKILL)
        await holder.wait()
        lock_data_dir(tmp_path).release()  # the kernel dropped it with the process
    finally:
        if holder.returncode is None:
            holder.kill()
            await holder.wait()


def test_an_inherited_fd_must_be_the_lock_file(tmp_path: Path) -> None:
    other = os.open(tmp_path / "not-the-lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        lock_data_dir(tmp_path).release()
        with pytest.raises(InstanceLockError, match="is not"):
            lock_data_dir(tmp_path, inherited_fd=other)
    finally:
        os.close(other)


def test_serve_without_an_lmk_says_so_in_one_line(tmp_path: Path) -> None:
    config = tmp_path / "forecourt.toml"
    config.write_text(_config(tmp_path / "data", _unused_port(), _unused_port(), "nokeys"))
    result = _second_serve(config)
    assert result.returncode == 2
    assert result.stderr.startswith("forecourt serve: no key store in ")
    assert "and no LMK: run `forecourt keys init" in result.stderr
    assert len(result.stderr.splitlines()) == 1


@pytest.mark.postgres
async def test_node_lock_goes_with_a_killed_holder(postgres_db: str) -> None:
    holder = await _holder("node", postgres_db, "fc1")
    try:
        with pytest.raises(InstanceInUse, match=rf"node 'fc1' .*\(pid {holder.pid} on "):
            lock_node(postgres_db, "fc1")
        lock_node(postgres_db, "fc2").release()  # another name runs side by side
        holder.send_signal(signal.SIGKILL)
        await holder.wait()
        with trio.fail_after(10):  # the server ends the session when it sees the EOF
            while True:
                try:
                    lock_node(postgres_db, "fc1").release()
                    break
                except InstanceInUse:
                    await trio.sleep(0.1)
    finally:
        if holder.returncode is None:
            holder.kill()
            await holder.wait()


@pytest.mark.slow
@pytest.mark.postgres
async def test_same_node_name_refused_other_name_runs(tmp_path: Path, postgres_db: str) -> None:
    data_dir = tmp_path / "data"  # one data dir (the LMK) for both: not locked with PostgreSQL
    _keys_init(data_dir, postgres_db)
    host = SmallHost(get_dialect("ifsf"))
    async with trio.open_nursery() as nursery:
        host_port = await nursery.start(host.serve)
        first_config, same_config, other_config = (
            tmp_path / "fc1.toml",
            tmp_path / "fc1-again.toml",
            tmp_path / "fc2.toml",
        )
        first_port, other_port = _unused_port(), _unused_port()
        first_config.write_text(_config(data_dir, first_port, host_port, "fc1", postgres_db))
        same_config.write_text(_config(data_dir, _unused_port(), host_port, "fc1", postgres_db))
        other_config.write_text(_config(data_dir, other_port, host_port, "fc2", postgres_db))
        async with crash.serving(first_config) as first:
            await (await crash.connect(first_port)).aclose()
            second = await trio.to_thread.run_sync(_second_serve, same_config)
            assert second.returncode == 2
            assert second.stderr.splitlines() == [
                f"forecourt serve: node 'fc1' is in use by another forecourt serve on this"
                f" database (pid {first.pid} on {os.uname().nodename}) — stop it first, or give"
                " this one another node name"
            ]
            async with crash.serving(other_config) as other:
                stream = await crash.connect(other_port)
                terminal = Terminal(stream, get_dialect("ifsf"), "T0000001", None)
                answer = await terminal.exchange(terminal.purchase(1000), timeout=10)
                assert answer.fields["39"] == "000"
                await stream.aclose()
                assert other.returncode is None
            assert first.returncode is None
        nursery.cancel_scope.cancel()


def _terminate_lock_session(dsn: str, node: str) -> None:
    """What a PostgreSQL restart or a dropped connection does to the holder's session."""
    import psycopg

    key = node_lock_key(node) & 0xFFFF_FFFF_FFFF_FFFF
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory'"
            " AND granted AND classid::bigint = %s AND objid::bigint = %s",
            (key >> 32, key & 0xFFFF_FFFF),
        ).fetchone()
    assert row is not None and row[0] is True


@pytest.mark.postgres
async def test_a_lost_node_lock_is_taken_again(postgres_db: str) -> None:
    lock = lock_node(postgres_db, "fc1")
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(lock.watch, 0.1)
            _terminate_lock_session(postgres_db, "fc1")
            with trio.fail_after(10):
                while True:
                    await trio.sleep(0.1)
                    try:
                        lock_node(postgres_db, "fc1").release()
                    except InstanceInUse:
                        break  # held again, by the watcher's new session
            nursery.cancel_scope.cancel()
    finally:
        lock.release()


@pytest.mark.postgres
async def test_a_lost_node_lock_taken_by_another_stops_this_one(postgres_db: str) -> None:
    lock = lock_node(postgres_db, "fc1")
    try:
        _terminate_lock_session(postgres_db, "fc1")
        with trio.fail_after(10):
            while True:  # the server ends the session asynchronously
                try:
                    other = lock_node(postgres_db, "fc1")
                    break
                except InstanceInUse:
                    await trio.sleep(0.05)
        try:
            with pytest.raises(InstanceInUse):
                await lock.watch(0.1)
        finally:
            other.release()
    finally:
        lock.release()


@pytest.mark.slow
@pytest.mark.postgres
async def test_workers_on_postgres_lock_their_node_and_each_worker(
    tmp_path: Path, postgres_db: str
) -> None:
    data_dir = tmp_path / "data"
    _keys_init(data_dir, postgres_db)
    host = SmallHost(get_dialect("ifsf"))
    async with trio.open_nursery() as nursery:
        host_port = await nursery.start(host.serve)
        config, same, worker = (tmp_path / f"{n}.toml" for n in ("pgw", "same", "worker"))
        config.write_text(_config(data_dir, _unused_port(), host_port, "pgw", postgres_db))
        same.write_text(_config(data_dir, _unused_port(), host_port, "pgw", postgres_db))
        worker.write_text(_config(data_dir, _unused_port(), host_port, "pgw-w2", postgres_db))
        output = bytearray()
        async with crash.serving(config, "--workers", "2", output=output) as supervisor:
            with trio.fail_after(90):  # two workers started, on a machine other runs share
                while output.count(b"switch_started") < 2:
                    await trio.sleep(0.05)
            refused = await trio.to_thread.run_sync(_second_serve, same)
            assert refused.returncode == 2
            assert "node 'pgw' is in use" in refused.stderr
            assert f"(pid {supervisor.pid} on " in refused.stderr
            refused = await trio.to_thread.run_sync(_second_serve, worker)
            assert refused.returncode == 2
            assert "node 'pgw-w2' is in use" in refused.stderr
            assert b"worker_died_restarting" not in output
        assert supervisor.returncode == 0
        nursery.cancel_scope.cancel()
