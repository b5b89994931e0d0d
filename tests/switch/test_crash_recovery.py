"""kill -9 with 200 transactions in flight, restart: nothing approved at the host is lost.

A real `forecourt serve` process, a host in this process that answers after 1-3 s and
books what it approves, 200 terminals on 20 connections. The switch is killed while
some answers are journalled and most are still at the host; a second process on the
same data dir recovers and SAF delivers the reversals. Then, from the journal and the
host's ledger: every transaction in flight at the kill is answered and journalled,
reversed through SAF, or never left the switch; nothing is reversed twice.
"""

from __future__ import annotations

import collections
import random
import time
from functools import partial
from pathlib import Path

import trio
from forecourt.codecs.dialect import decode, get_dialect
from forecourt.codecs.fields import OriginalData
from forecourt.codecs.framing import FrameDecoder, Framing
from forecourt.codecs.message import Message
from forecourt.switch.journal import ClaimSaf, JournalRow, SafEntry, open_journal
from forecourt.switch.reversal import saf_payload
from forecourt.switch.server import saf_data_key

from tests import crash_harness as crash
from tests.switch.harness import HostPlan, RecordingHost, Terminal, _unused_port, started_switch

TERMINALS = [f"T{n:07d}" for n in range(1, 201)]
CONNECTIONS = 20
LINK_CONNECTIONS = 4
KILL_AFTER_S = 2.0


def _config(data_dir: Path, port: int, host_port: int) -> str:
    link = crash.bank_link(
        host_port,
        connections=LINK_CONNECTIONS,
        max_in_flight=1000,
        request_timeout_s=10.0,
        reconnect_max_s=0.2,
        acquirer_id="12345678901",
    )
    saf = {"backoff_initial_s": 0.2, "backoff_max_s": 1.0, "lease_s": 15.0}
    return crash.serve_config(
        data_dir, port, node="crash-test", terminals=TERMINALS, saf=saf, max_in_flight=2,
        acquirers=link,
    )  # fmt: skip


def _slow_host(seed: int) -> RecordingHost:
    """Answers in 1-3 s; every seventh terminal is declined."""
    rng = random.Random(seed)

    def plan(request: Message) -> HostPlan:
        declined = int(request.fields["41"][1:]) % 7 == 0
        return HostPlan(code="100" if declined else "000", delay_s=rng.uniform(1.0, 3.0))

    return RecordingHost(plan=plan)


async def _terminals(
    stream: trio.SocketStream, terminal_ids: list[str], told: dict[str, Message]
) -> None:
    """One connection shared by several terminals: send a purchase each, read answers."""
    dialect = get_dialect("ifsf")

    async def read() -> None:
        decoder = FrameDecoder(Framing())
        try:
            while data := await stream.receive_some(65536):
                for frame in decoder.feed(data):
                    answer = decode(dialect, frame.payload)
                    told[answer.fields["41"]] = answer
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass

    async with trio.open_nursery() as nursery:
        nursery.start_soon(read)
        try:
            for terminal_id in terminal_ids:
                terminal = Terminal(stream, dialect, terminal_id, None)
                await terminal.send(terminal.purchase(1000 + int(terminal_id[1:])))
                # the last ones go as the switch is killed: some never reach it
                await trio.sleep(KILL_AFTER_S / (len(terminal_ids) - 1))
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass  # the switch was killed before this terminal could send


async def _journal(journal_db: Path) -> tuple[list[JournalRow], list[SafEntry]]:
    async with open_journal(journal_db) as journal:
        return await journal.list(limit=10_000), await journal.saf_entries(limit=10_000)


async def test_kill_9_with_200_in_flight_loses_nothing(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    lmk_file = str(tmp_path / "lmk.key")  # outside the data directory
    crash.init_keys(data_dir, lmk_file)
    host = _slow_host(seed=8583)
    told: dict[str, Message] = {}
    async with trio.open_nursery() as nursery:
        host_port = await nursery.start(host.serve)
        port = _unused_port()
        config = tmp_path / "forecourt.toml"
        config.write_text(_config(data_dir, port, host_port))
        async with crash.serving(config, log=tmp_path / "first.log") as first:
            await crash.links_up(host, LINK_CONNECTIONS)
            streams = [await crash.connect(port) for _ in range(CONNECTIONS)]
            started = time.monotonic()
            await crash.kill_9_under_load(
                first,
                [partial(_terminals, s, TERMINALS[i::CONNECTIONS], told)
                 for i, s in enumerate(streams)],
                after_s=KILL_AFTER_S - (time.monotonic() - started),
            )  # fmt: skip
            for stream in streams:
                await stream.aclose()
        answered_before_kill = len(told)
        at_host_before_restart = len(host.bookings)

        async with crash.serving(config, log=tmp_path / "second.log") as second:
            await crash.links_up(host, 2 * LINK_CONNECTIONS)
            await crash.drained(data_dir / "journal.db")
            assert await crash.stop(second) == 0
        nursery.cancel_scope.cancel()

    rows, saf = await _journal(data_dir / "journal.db")
    states = collections.Counter(r.state for r in rows)
    print(
        f"answered before the kill {answered_before_kill}, at the host {len(host.bookings)}, "
        f"journalled {len(rows)} {dict(states)}, reversals naming nothing {len(host.orphans)}"
    )
    forwarded = {(r.terminal_id, r.acquirer_stan): r for r in rows if r.forwarded_at is not None}
    # the scenario did what it is for: answers journalled before the kill, most in flight
    assert 0 < answered_before_kill < len(TERMINALS) // 2, answered_before_kill
    assert len(host.bookings) == at_host_before_restart  # nothing new went up after restart
    assert sum(r.state == "reversed" for r in rows) > len(TERMINALS) // 3

    # every row final; SAF holds nothing to deliver and nothing an operator must see,
    # only the reversals parked for approved purchases until their shift closes
    assert {r.state for r in rows} <= crash.FINAL, sorted({r.state for r in rows} - crash.FINAL)
    state_of = {r.txn_id: r.state for r in rows}
    for entry in saf:
        parked = entry.state == "pending" and entry.next_attempt_at > time.time() + 86400
        assert entry.state == "done" or (parked and state_of[entry.txn_id] == "approved"), entry

    for booking in host.bookings:
        terminal_id, stan, _ = RecordingHost.key(booking.request)
        # journalled before it left the switch
        row = forwarded.get((terminal_id, stan))
        assert row is not None, f"host saw {terminal_id}/{stan} that the journal does not hold"
        assert booking.reversals <= 1, f"{terminal_id} reversed {booking.reversals} times"
        if booking.reversals:
            assert row.state == "reversed", (terminal_id, row.state)
            continue
        # not reversed: the answer is journalled, as the host gave it
        assert row.state == ("approved" if booking.approved else "declined"), (
            terminal_id,
            row.state,
        )
        assert row.response_raw is not None
        assert row.action_code == booking.code

    # a reversal naming nothing the host saw is for a request that never left the switch
    for reversal in host.orphans:
        original = OriginalData.decode(reversal.fields["56"])
        row = forwarded.get((reversal.fields["41"], original.stan))
        assert row is not None and row.state == "reversed", reversal.fields["41"]
    orphaned = {(m.fields["41"], OriginalData.decode(m.fields["56"]).stan) for m in host.orphans}
    reversed_at_host = {
        RecordingHost.key(b.request)[:2] for b in host.bookings if b.reversals
    } | orphaned
    assert len(orphaned) == len(host.orphans)  # never twice either
    for row in rows:
        if row.state == "reversed":
            assert (row.terminal_id, row.acquirer_stan) in reversed_at_host, row.terminal_id

    # what a terminal heard is what the journal and the host hold
    by_terminal = {r.terminal_id: r for r in rows}
    for terminal_id, answer in told.items():
        row = by_terminal[terminal_id]
        assert row.action_code == answer.fields["39"]
        assert row.state == ("approved" if answer.fields["39"] == "000" else "declined")


async def test_saf_item_claimed_when_the_switch_stopped_is_due_at_restart(tmp_path: Path) -> None:
    """Not only when its lease runs out (a minute by default)."""
    host = RecordingHost()
    async with started_switch(tmp_path, host=host, mac=False) as sut:
        async with sut.terminal() as t:
            purchase = t.purchase(5000)
            assert (await t.exchange(purchase)).fields["39"] == "000"
        reversal = t.reversal(purchase)
        assert sut._lmk is not None
        async with open_journal(
            tmp_path / "journal.db", saf_key=saf_data_key(sut._lmk), node="test-node"
        ) as journal:
            (row,) = await journal.list(limit=1)
            # queued and taken by this node in one write, as if its delivery was under way
            await journal.write(
                journal.saf_enqueue_op(row.txn_id, "bank", reversal.mti, saf_payload(reversal)),
                ClaimSaf("test-node", limit=1, lease_s=60.0, now=time.time(), link="bank"),
            )
        await sut.restart()
        with trio.fail_after(5):
            while not [m for m in host.received if m.mti[:2] == "14"]:
                await trio.sleep(0.02)
