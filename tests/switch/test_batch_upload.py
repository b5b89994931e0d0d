"""Batch upload of offline advices (ifsf 1220 with 48-4) and its trailer (1604/691).

A real switch on real sockets with an SQLite journal and the tests' small host, which
acknowledges every advice; what reached the host, the SAF table and the transactions
are read back to prove that nothing was journalled or forwarded twice.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from pathlib import Path

import trio
from forecourt.codecs.field48 import decode_field48, encode_field48
from forecourt.codecs.message import Message

from tests.operators.cli_runs import forecourt, one_line_failure
from tests.switch.harness import SwitchUnderTest, Terminal, _unused_port, started_switch
from tests.switch.test_replay import metric


def offline_advice(t: Terminal, batch: str, amount: int) -> Message:
    """An offline sale the terminal approved itself, uploaded later in batch `batch`."""
    sale = t.purchase(amount)
    return sale.with_fields({24: "200", 48: encode_field48({4: batch})}, mti="1220")


def trailer(t: Terminal, batch: str, count: int, amount: int) -> Message:
    fields = {
        "7": time.strftime("%m%d%H%M%S", time.gmtime()),
        "11": t.next_stan(),
        "24": "691",
        "41": t.terminal_id,
        "42": "FORECOURT000001",
        "48": encode_field48({4: batch, 57: f"{count:06d}{amount:012d}"}),
    }
    return Message("1604", fields)


def totals(answer: Message) -> tuple[str, str]:
    elements = decode_field48(answer.fields["48"])
    return str(elements[4]), str(elements[57])


async def upload(t: Terminal, advices: list[Message]) -> None:
    for advice in advices:
        answer = await t.exchange(advice)
        assert (answer.mti, answer.fields["39"]) == ("1230", "000")


async def advices_at_host(sut: SwitchUnderTest, expected: int) -> list[Message]:
    """The advices the host received once SAF has delivered `expected` of them."""
    host = sut.host
    with trio.fail_after(10):
        while len([m for m in host.received if m.mti.startswith("122")]) < expected:
            await trio.sleep(0.02)
    await trio.sleep(0.3)  # anything more would have come by now
    return [m for m in host.received if m.mti.startswith("122")]


def _count(db: Path, sql: str) -> int:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return int(conn.execute(sql).fetchone()[0])


async def test_a_batch_in_balance_then_uploaded_again_changes_nothing(tmp_path: Path) -> None:
    db = tmp_path / "journal.db"
    async with started_switch(tmp_path, metrics_port=_unused_port()) as sut, sut.terminal() as t:
        batch = "0000000007"
        advices = [offline_advice(t, batch, a) for a in (1000, 2550, 399)]
        await upload(t, advices)
        answer = await t.exchange(trailer(t, batch, 3, 3949))
        assert (answer.mti, answer.fields["39"]) == ("1614", "500")
        assert totals(answer) == (batch, "000003000000003949")
        assert len(await advices_at_host(sut, 3)) == 3

        # the same advices again (a terminal that never heard the trailer's answer)
        await upload(t, advices)
        again = await t.exchange(trailer(t, batch, 3, 3949))
        assert (again.fields["39"], totals(again)) == ("500", totals(answer))
        at_host = await advices_at_host(sut, 3)
        assert sorted(m.fields["4"] for m in at_host) == sorted(a.fields["4"] for a in advices)
        assert all(m.mti == "1220" for m in at_host)
        port = sut.running.metrics_port or 0
        assert await metric(port, 'forecourt_batch_trailers_total{result="in_balance"}') == 2
        assert await metric(port, "forecourt_batch_advices_count") == 2
        assert await metric(port, "forecourt_batch_advices_sum") == 6
    assert _count(db, "SELECT count(*) FROM transactions WHERE request_mti = '1220'") == 3
    assert _count(db, "SELECT count(*) FROM saf WHERE mti LIKE '122%'") == 3
    assert _count(db, "SELECT count(*) FROM batch_advices") == 3
    assert _count(db, "SELECT trailers FROM batches") == 2


async def test_a_wrong_trailer_is_answered_with_the_switchs_totals(tmp_path: Path) -> None:
    async with started_switch(tmp_path, metrics_port=_unused_port()) as sut, sut.terminal() as t:
        batch = "0000000042"
        await upload(t, [offline_advice(t, batch, 1200), offline_advice(t, batch, 800)])
        wrong_count = await t.exchange(trailer(t, batch, 3, 2000))
        wrong_amount = await t.exchange(trailer(t, batch, 2, 2100))
        for answer in (wrong_count, wrong_amount):
            assert (answer.fields["39"], totals(answer)) == ("501", (batch, "000002000000002000"))
        # another batch number, and a trailer that names none
        empty = await t.exchange(trailer(t, "0000000043", 2, 2000))
        assert (empty.fields["39"], totals(empty)) == ("501", ("0000000043", "0" * 18))
        bare = trailer(t, batch, 2, 2000).with_fields({48: encode_field48({4: batch})})
        assert (await t.exchange(bare)).fields["39"] == "904"
        port = sut.running.metrics_port or 0
        assert await metric(port, 'forecourt_batch_trailers_total{result="out_of_balance"}') == 3
    # the desk sees both batches out of balance, with both sides' totals
    shown = forecourt("journal", "batches", "--data-dir", tmp_path, "--terminal", "T0000001")
    assert shown.returncode == 0, shown.stderr
    lines = [line for line in shown.stdout.splitlines() if "0000000042" in line]
    assert len(lines) == 1 and "2 / 21.00" in lines[0] and "2 / 20.00" in lines[0]
    assert "OUT OF BALANCE" in lines[0] and shown.stdout.count("OUT OF BALANCE") == 2
    failed = forecourt("journal", "batches", "--data-dir", tmp_path, "--limit", "0")
    assert "--limit must be at least 1" in one_line_failure(failed)


async def test_a_reupload_with_the_missing_advice_brings_the_batch_into_balance(
    tmp_path: Path,
) -> None:
    db = tmp_path / "journal.db"
    async with started_switch(tmp_path) as sut, sut.terminal() as t:
        batch = "0000000100"
        advices = [offline_advice(t, batch, a) for a in (700, 1300, 2500)]
        single = offline_advice(t, batch, 900).with_fields({48: None})  # no batch: a single
        await upload(t, [advices[0], single, advices[2]])  # the second one was lost
        first = await t.exchange(trailer(t, batch, 3, 4500))
        assert (first.fields["39"], totals(first)) == ("501", (batch, "000002000000003200"))
        await upload(t, advices)
        second = await t.exchange(trailer(t, batch, 3, 4500))
        assert (second.fields["39"], totals(second)) == ("500", (batch, "000003000000004500"))
        at_host = await advices_at_host(sut, 4)
        assert len(at_host) == 4
    assert _count(db, "SELECT count(*) FROM saf WHERE mti LIKE '122%'") == 4
    assert _count(db, "SELECT count(*) FROM batch_advices") == 3
    assert _count(db, "SELECT count(*) FROM transactions WHERE flags LIKE '%batch%'") == 3


async def test_batch_numbers_are_per_terminal(tmp_path: Path) -> None:
    async with (
        started_switch(tmp_path) as sut,
        sut.terminal() as t,
        sut.terminal("T0000002") as other,
    ):
        batch = "0000000001"
        await upload(t, [offline_advice(t, batch, 500)])
        await upload(other, [offline_advice(other, batch, 700)])
        mine = await t.exchange(trailer(t, batch, 1, 500))
        theirs = await other.exchange(trailer(other, batch, 1, 700))
        assert (mine.fields["39"], theirs.fields["39"]) == ("500", "500")
