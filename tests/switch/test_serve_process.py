"""`forecourt serve` as a real process: SIGTERM drains in-flight work and exits 0."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import trio
from forecourt.codecs.dialect import get_dialect
from forecourt.switch.journal import open_journal

from tests import crash_harness as crash
from tests.switch.harness import SmallHost, Terminal, _unused_port


def _config(data_dir: Path, port: int, host_port: int) -> str:
    link = crash.bank_link(host_port, request_timeout_s=5.0)
    return crash.serve_config(data_dir, port, node="proc-test", level="info", acquirers=link)


async def test_sigterm_drains_and_exits_zero(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    crash.init_keys(data_dir, tmp_path / "lmk.key")  # outside the data directory
    host = SmallHost(get_dialect("ifsf"))
    async with trio.open_nursery() as nursery:
        host_port = await nursery.start(host.serve)
        port = _unused_port()
        config = tmp_path / "forecourt.toml"
        config.write_text(_config(data_dir, port, host_port))
        output = bytearray()
        async with crash.serving(config, output=output) as process:
            stream = await crash.connect(port)
            await crash.links_up(host, 1, within_s=10)
            terminal = Terminal(stream, get_dialect("ifsf"), "T0000001", None)
            await terminal.send(terminal.purchase(200000))  # answered after 2 s
            await trio.sleep(0.5)
            process.send_signal(signal.SIGTERM)
            answer = await terminal.receive(timeout=10)
            assert answer.fields["39"] == "000"
            await stream.aclose()
            with trio.fail_after(15):
                code = await process.wait()
            assert code == 0
        assert b"switch_stopped" in output
        nursery.cancel_scope.cancel()
    async with open_journal(data_dir / "journal.db") as journal:
        rows = await journal.list(limit=5)
    assert [r.state for r in rows] == ["approved"]


async def test_second_signal_exits_at_once(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    crash.init_keys(data_dir, tmp_path / "lmk.key")  # outside the data directory
    host = SmallHost(get_dialect("ifsf"))
    async with trio.open_nursery() as nursery:
        host_port = await nursery.start(host.serve)
        port = _unused_port()
        config = tmp_path / "forecourt.toml"
        config.write_text(_config(data_dir, port, host_port))
        async with crash.serving(config) as process:
            stream = await crash.connect(port)
            terminal = Terminal(stream, get_dialect("ifsf"), "T0000001", None)
            await terminal.send(terminal.purchase(200000))  # in flight for 2 s
            await trio.sleep(0.3)
            process.send_signal(signal.SIGINT)
            await trio.sleep(0.2)
            process.send_signal(signal.SIGINT)
            with trio.fail_after(1.5):  # well before the host would have answered
                code = await process.wait()
            assert code == 130
            await stream.aclose()
        nursery.cancel_scope.cancel()


def test_a_port_in_use_is_one_line_naming_it(tmp_path: Path) -> None:
    """Before: 67 lines of traceback that did not name the port, exit 1."""
    import socket

    data_dir = tmp_path / "data"
    lmk_file = str(tmp_path / "lmk.key")
    crash.init_keys(data_dir, lmk_file)
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        config = tmp_path / "forecourt.toml"
        config.write_text(
            _config(data_dir, port, _unused_port()) + f'[keys]\nlmk_file = "{lmk_file}"\n'
        )
        done = subprocess.run(
            [*crash.FORECOURT, "serve", "--config", str(config)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert f"127.0.0.1:{port}" in lines[0] and "pos" in lines[0]
    assert "Traceback" not in done.stderr
