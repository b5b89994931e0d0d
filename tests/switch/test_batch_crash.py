"""kill -9 in the middle of a batch upload: after the restart, the terminal uploads the
whole batch again and every advice is journalled and forwarded exactly once.

A real `forecourt serve` process (tests/crash_harness.py) and a host in
this process. During the first run the link points at a port nobody listens on, so
the advices wait in SAF (never attempted, so none can be half-sent when the process
dies); three advices are answered, two more are sent and the process is killed
without reading their answers. The second run has the host up: the re-upload and the
trailer, then SAF delivers.
"""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import pytest
import trio
from forecourt.codecs.dialect import get_dialect

from tests import crash_harness as crash
from tests.switch.harness import RecordingHost, Terminal, _unused_port
from tests.switch.test_batch_upload import offline_advice, totals, trailer, upload

# a `forecourt serve` start on a machine shared with other test runs can take well over
# the harness's usual 20 s
_START_S = 90.0


def _config(data_dir: Path, port: int, host_port: int) -> str:
    return crash.saf_config(data_dir, port, host_port, node="batch-crash")


def _count(db: Path, sql: str) -> int:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return int(conn.execute(sql).fetchone()[0])


@pytest.mark.slow
async def test_kill_9_mid_batch_then_reupload_journals_and_forwards_each_advice_once(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    lmk_file = str(tmp_path / "lmk.key")
    crash.init_keys(data_dir, lmk_file)
    host = RecordingHost()
    batch = "0000000900"
    amounts = (1100, 2200, 3300, 4400, 5500, 6600)
    port = _unused_port()
    config = tmp_path / "forecourt.toml"
    config.write_text(_config(data_dir, port, _unused_port()))  # no host yet
    async with crash.serving(config, log=tmp_path / "first.log") as first:
        stream = await crash.connect(port, _START_S)
        t = Terminal(stream, get_dialect("ifsf"), "T0000001", None)
        advices = [offline_advice(t, batch, a) for a in amounts]
        await upload(t, advices[:3])
        for advice in advices[3:5]:
            await t.send(advice, mac=False)
        await crash.kill_9(first)  # the answers to the 4th and 5th advices never read
        await stream.aclose()
    journal_db = data_dir / "journal.db"
    written = _count(journal_db, "SELECT count(*) FROM batch_advices")
    assert 3 <= written <= 5
    assert _count(journal_db, "SELECT count(*) FROM saf WHERE mti LIKE '122%'") == written

    async with trio.open_nursery() as nursery:
        host_port = await nursery.start(host.serve)
        config.write_text(_config(data_dir, port, host_port))
        async with crash.serving(config, log=tmp_path / "second.log") as second:
            await crash.links_up(host, 1, _START_S)
            stream = await crash.connect(port, _START_S)
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
            assert await crash.stop(second) == 0
        nursery.cancel_scope.cancel()

    delivered = [m for m in host.received if m.mti.startswith("122")]
    assert sorted(int(m.fields["4"]) for m in delivered) == list(amounts)
    assert {m.mti for m in delivered} == {"1220"}  # none sent twice, not even as a repeat
    assert _count(journal_db, "SELECT count(*) FROM transactions WHERE request_mti = '1220'") == 6
    assert _count(journal_db, "SELECT count(*) FROM saf WHERE mti LIKE '122%'") == 6
    assert _count(journal_db, "SELECT count(*) FROM saf WHERE state != 'done'") == 0
    assert _count(journal_db, "SELECT count(*) FROM batch_advices") == 6
