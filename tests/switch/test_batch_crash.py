"""kill -9 in the middle of a batch upload: after the restart, the terminal uploads the
whole batch again and every advice is journalled and forwarded exactly once.

A real `forecourt serve` process (the harness of test_crash_recovery) and a host in
this process. During the first run the link points at a port nobody listens on, so
the advices wait in SAF (never attempted, so none can be half-sent when the process
dies); three advices are answered, two more are sent and the process is killed
without reading their answers. The second run has the host up: the re-upload and the
trailer, then SAF delivers.
"""

from __future__ import annotations

import contextlib
import signal
import sqlite3
import subprocess
from pathlib import Path

import pytest
import trio
from forecourt.codecs.dialect import get_dialect

from tests.switch.harness import RecordingHost, Terminal, _unused_port
from tests.switch.test_batch_upload import offline_advice, totals, trailer, upload
from tests.switch.test_crash_recovery import FORECOURT, _serve, _stop

# a `forecourt serve` start on a machine shared with other test runs can take well over
# the 20 s test_crash_recovery's helpers allow
_START_S = 90.0


async def _connect(port: int) -> trio.SocketStream:
    with trio.fail_after(_START_S):
        while True:
            try:
                return await trio.open_tcp_stream("127.0.0.1", port)
            except OSError:
                await trio.sleep(0.05)


async def _links_up(host: RecordingHost, count: int) -> None:
    with trio.fail_after(_START_S):
        while host.connections < count:
            await trio.sleep(0.02)
    await trio.sleep(0.1)  # their sign-ons


def _config(data_dir: Path, port: int, host_port: int) -> str:
    return f"""
node = "batch-crash"
data_dir = "{data_dir}"
default_route = "bank"
[logging]
level = "info"
format = "json"
[saf]
backoff_initial_s = 0.2
backoff_max_s = 0.5
lease_s = 30.0
[[listeners]]
name = "pos"
host = "127.0.0.1"
port = {port}
dialect = "ifsf"
terminal_group = "site"
[[terminal_groups]]
name = "site"
terminals = ["T0000001"]
mac_required = false
[[acquirers]]
mac = false
name = "bank"
host = "127.0.0.1"
port = {host_port}
connections = 1
request_timeout_s = 1.0
echo_interval_s = 0.0
reconnect_initial_s = 0.05
reconnect_max_s = 0.2
acquirer_id = "12345678901"
"""


def _count(db: Path, sql: str) -> int:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return int(conn.execute(sql).fetchone()[0])


@pytest.mark.slow
async def test_kill_9_mid_batch_then_reupload_journals_and_forwards_each_advice_once(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    lmk_file = str(tmp_path / "lmk.key")
    subprocess.run(
        [*FORECOURT, "keys", "init", "--data-dir", str(data_dir), "--lmk-file", lmk_file],
        check=True,
        capture_output=True,
    )
    host = RecordingHost()
    batch = "0000000900"
    amounts = (1100, 2200, 3300, 4400, 5500, 6600)
    port = _unused_port()
    config = tmp_path / "forecourt.toml"
    config.write_text(_config(data_dir, port, _unused_port()))  # no host yet
    with (tmp_path / "first.log").open("wb") as log:
        first = await _serve(config, log)
        try:
            stream = await _connect(port)
            t = Terminal(stream, get_dialect("ifsf"), "T0000001", None)
            advices = [offline_advice(t, batch, a) for a in amounts]
            await upload(t, advices[:3])
            for advice in advices[3:5]:
                await t.send(advice, mac=False)
            first.kill()  # the answers to the 4th and 5th advices never read
            assert await first.wait() == -signal.SIGKILL
            await stream.aclose()
        finally:
            if first.returncode is None:
                first.kill()
                await first.wait()
    journal_db = data_dir / "journal.db"
    written = _count(journal_db, "SELECT count(*) FROM batch_advices")
    assert 3 <= written <= 5
    assert _count(journal_db, "SELECT count(*) FROM saf WHERE mti LIKE '122%'") == written

    async with trio.open_nursery() as nursery:
        host_port = await nursery.start(host.serve)
        config.write_text(_config(data_dir, port, host_port))
        with (tmp_path / "second.log").open("wb") as log:
            second = await _serve(config, log)
            try:
                await _links_up(host, 1)
                stream = await _connect(port)
                t = Terminal(stream, get_dialect("ifsf"), "T0000001", None)
                for advice in advices:
                    answer = await t.exchange(advice)
                    assert answer.fields["39"] == "000"
                closing = await t.exchange(trailer(t, batch, 6, sum(amounts)))
                assert (closing.fields["39"], totals(closing)) == (
                    "500",
                    (batch, f"{6:06d}{sum(amounts):012d}"),
                )
                await stream.aclose()
                with trio.fail_after(20):
                    while len([m for m in host.received if m.mti.startswith("122")]) < 6:
                        await trio.sleep(0.05)
                await trio.sleep(1.0)  # a second copy would have come by now
                assert await _stop(second) == 0
            finally:
                if second.returncode is None:
                    second.kill()
                    await second.wait()
        nursery.cancel_scope.cancel()

    delivered = [m for m in host.received if m.mti.startswith("122")]
    assert sorted(int(m.fields["4"]) for m in delivered) == list(amounts)
    assert {m.mti for m in delivered} == {"1220"}  # none sent twice, not even as a repeat
    assert _count(journal_db, "SELECT count(*) FROM transactions WHERE request_mti = '1220'") == 6
    assert _count(journal_db, "SELECT count(*) FROM saf WHERE mti LIKE '122%'") == 6
    assert _count(journal_db, "SELECT count(*) FROM saf WHERE state != 'done'") == 0
    assert _count(journal_db, "SELECT count(*) FROM batch_advices") == 6
