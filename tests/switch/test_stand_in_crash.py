"""kill -9 after a stand-in approval was answered: after the restart its advice still goes,
and only after the reversal of the request that timed out.

A real `forecourt serve` process (tests/crash_harness.py), a host in this
process that never answers the purchase (the switch times out and stands in) and, until
the restart, answers no reversal or advice either: so at the kill the reversal is
queued or in flight and the advice waits behind it in the journal.
"""

from __future__ import annotations

from pathlib import Path

import attrs
import pytest
import trio
from forecourt.codecs.dialect import decode, get_dialect
from forecourt.codecs.message import Message
from forecourt.switch.journal import open_journal

from tests import crash_harness as crash
from tests.switch.harness import (
    TEST_PAN,
    HostPlan,
    RecordingHost,
    Terminal,
    _unused_port,
)

STAND_IN = """
[stand_in]
enabled = true
currency = "978"
[[stand_in.floor_limits]]
product = "cards"
signature = 5000
[[routes]]
name = "cards"
acquirer = "bank"
prefixes = ["4761"]
"""


def _config(data_dir: Path, port: int, host_port: int) -> str:
    return crash.saf_config(data_dir, port, host_port, node="stand-in-crash", more=STAND_IN)


@attrs.define
class SilentHost(RecordingHost):
    """Never answers a purchase; answers reversals and advices only once `answering`."""

    answering: bool = False

    async def _answer(self, stream: trio.SocketStream, lock: trio.Lock, payload: bytes) -> None:
        request = decode(self.dialect, payload)
        if (request.mti[1] == "4" or request.mti[2] == "2") and not self.answering:
            self.received.append(request)
            return
        await super()._answer(stream, lock, payload)


def _never(request: Message) -> HostPlan:
    return HostPlan(answer=False)


@pytest.mark.slow
async def test_kill_9_after_a_stand_in_answer_still_delivers_the_advice(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    lmk_file = str(tmp_path / "lmk.key")
    crash.init_keys(data_dir, lmk_file)
    host = SilentHost(plan=_never)
    async with trio.open_nursery() as nursery:
        host_port = await nursery.start(host.serve)
        port = _unused_port()
        config = tmp_path / "forecourt.toml"
        config.write_text(_config(data_dir, port, host_port))
        async with crash.serving(config, log=tmp_path / "first.log") as first:
            await crash.links_up(host, 1)
            stream = await crash.connect(port)
            terminal = Terminal(stream, get_dialect("ifsf"), "T0000001", None)
            purchase = terminal.purchase(4200, pan=TEST_PAN)
            answer = await terminal.exchange(purchase, timeout=10.0)
            assert answer.fields["39"] == "000" and answer.fields["38"].startswith("S")
            # SAF is trying the reversal of the timed-out request; nothing answers it
            with trio.fail_after(10):
                while not [m for m in host.received if m.mti[1] == "4"]:
                    await trio.sleep(0.02)
            await crash.kill_9(first)
            await stream.aclose()
        before_restart = len(host.received)
        assert not [m for m in host.received if m.mti.startswith("122")]
        host.answering = True
        async with crash.serving(config, log=tmp_path / "second.log") as second:
            await crash.links_up(host, 2)
            with trio.fail_after(20):
                while not [m for m in host.received if m.mti.startswith("122")]:
                    await trio.sleep(0.05)
            await trio.sleep(0.5)  # its acknowledgement journalled
            assert await crash.stop(second) == 0
        nursery.cancel_scope.cancel()

    after = host.received[before_restart:]
    reversals = [i for i, m in enumerate(after) if m.mti[1] == "4"]
    advices = [i for i, m in enumerate(after) if m.mti.startswith("122")]
    # after the restart: the reversal first (answered now), then the advice, once
    assert reversals and len(advices) == 1 and reversals[-1] < advices[0]
    advice = after[advices[0]]
    assert advice.fields["38"] == answer.fields["38"] and advice.fields["37"] == answer.fields["37"]
    assert advice.fields["4"] == purchase.fields["4"]
    async with open_journal(data_dir / "journal.db") as journal:
        (row,) = [r for r in await journal.list(limit=10) if r.request_mti == "1200"]
        kinds = [e.kind for e in await journal.events(row.txn_id)]
    assert row.state == "approved" and "stand_in" in row.flags
    assert row.auth_code == answer.fields["38"]
    assert kinds.index("timed_out_request_reversed") < kinds.index("advice_delivered")
