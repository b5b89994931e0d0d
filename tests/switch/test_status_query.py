"""Status query (1604, function 690): a terminal asks what became of one of its own
transactions, and the switch answers from its journal, never from the acquirer.

A real switch on real sockets with an SQLite journal, the tests' small host (here one
that also gives an RRN, as acquirers do), terminals that MAC their requests.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from pathlib import Path

import attrs
import trio
from forecourt.codecs.dialect import decode, encode, get_dialect
from forecourt.codecs.field48 import decode_field48
from forecourt.codecs.fields import OriginalData
from forecourt.codecs.framing import Framing, encode_frame
from forecourt.codecs.message import Message
from forecourt.codecs.mti import response_mti
from forecourt.switch.journal import open_journal

from tests.switch.harness import SmallHost, Terminal, _unused_port, started_switch
from tests.switch.test_replay import metric


@attrs.define
class RrnHost(SmallHost):
    """The small host's answers (amount 100000 declines 100), each with an RRN in 37."""

    rrns: int = 0

    async def _answer(self, stream: trio.SocketStream, lock: trio.Lock, payload: bytes) -> None:
        request = decode(self.dialect, payload)
        self.received.append(request)
        fields = {k: v for k, v in request.fields.items() if k not in ("2", "35", "52", "64")}
        if request.mti[1] == "8":
            fields["39"] = "800"
        elif request.mti[1] == "4":
            fields["39"] = "400"
        elif request.fields.get("4") == "000000100000":
            fields["39"] = "100"
        else:
            fields["39"] = "000"
            fields["38"] = "A1B2C3"
        if request.mti[1] in "12":
            self.rrns += 1
            fields["37"] = f"RRN{self.rrns:09d}"
        answer = encode(self.dialect, Message(response_mti(request.mti), fields))
        async with lock:
            with contextlib.suppress(trio.BrokenResourceError):
                await stream.send_all(encode_frame(Framing(), answer))


def by_original(t: Terminal, original: Message, *, date: str | None = None) -> Message:
    data = OriginalData.of(original.mti, original.fields)
    if date is not None:
        data = attrs.evolve(data, local_datetime=date)
    return _query(t, {"56": data.encode()})


def by_rrn(t: Terminal, rrn: str) -> Message:
    return _query(t, {"37": rrn})


def _query(t: Terminal, naming: dict[str, str]) -> Message:
    fields = {
        "7": time.strftime("%m%d%H%M%S", time.gmtime()),
        "11": t.next_stan(),
        "24": "690",
        "41": t.terminal_id,
        "42": "FORECOURT000001",
        **naming,
    }
    return Message("1604", fields)


def outcome(answer: Message) -> str:
    value = decode_field48(answer.fields["48"])[56]
    assert isinstance(value, str)
    return value


def _rows(db: Path, sql: str) -> list[tuple[object, ...]]:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return conn.execute(sql).fetchall()


async def test_status_query_answers_each_outcome_from_the_journal(tmp_path: Path) -> None:
    host = RrnHost(get_dialect("ifsf"))
    async with started_switch(tmp_path, host=host, metrics_port=_unused_port()) as sut:
        async with sut.terminal() as t, sut.terminal("T0000002") as other:
            approved = t.purchase(4200)
            a1 = await t.exchange(approved)
            declined = t.purchase(100000)
            d1 = await t.exchange(declined)
            reversed_ = t.purchase(1500)
            assert (await t.exchange(reversed_)).fields["39"] == "000"
            control = t.purchase(4200)  # approved like the first, never asked about
            assert (await t.exchange(control)).fields["39"] == "000"
            assert a1.fields["39"] == "000" and d1.fields["39"] == "100"

            # a query that is repeated (same STAN) after the original changed is asked
            # again, not replayed: a status query is never a retransmission
            before = by_original(t, reversed_)
            first = await t.exchange(before)
            assert (first.mti, first.fields["39"], outcome(first)) == ("1614", "600", "A000")
            assert (await t.exchange(t.reversal(reversed_))).fields["39"] == "400"
            again = await t.exchange(before)
            assert (again.fields["39"], outcome(again)) == ("600", "R000")
            assert "4" not in again.fields and "38" not in again.fields

            with trio.fail_after(5):  # SAF delivers the reversal: the host's last message
                while not [m for m in host.received if m.mti == "1420"]:
                    await trio.sleep(0.02)
            host_heard = len(host.received)
            duplicates = await metric(sut.running.metrics_port or 0, "forecourt_duplicates_total")

            answer = await t.exchange(by_original(t, approved))
            assert (answer.fields["39"], outcome(answer)) == ("600", "A000")
            assert answer.fields["4"] == "000000004200" and answer.fields["38"] == "A1B2C3"
            assert answer.fields["37"] == a1.fields["37"] and "2" not in answer.fields

            answer = await t.exchange(by_rrn(t, a1.fields["37"]))
            assert (answer.fields["39"], outcome(answer), answer.fields["4"]) == (
                "600",
                "A000",
                "000000004200",
            )
            answer = await t.exchange(by_original(t, declined))
            assert (answer.fields["39"], outcome(answer)) == ("600", "D100")
            assert "4" not in answer.fields and "38" not in answer.fields
            answer = await t.exchange(by_rrn(t, d1.fields["37"]))
            assert outcome(answer) == "D100"

            # unknown: a STAN never used, an RRN no one has, the right STAN on a date
            # days away (the terminal's STANs came round since)
            never = approved.with_fields({11: "999998"})
            for query in (
                by_original(t, never),
                by_rrn(t, "RRN999999999"),
                by_original(t, approved, date="200101120000"),
            ):
                answer = await t.exchange(query)
                assert (answer.fields["39"], outcome(answer)) == ("601", "U   ")
                assert "4" not in answer.fields

            # another terminal asking about T0000001's purchase learns nothing
            for query in (by_original(other, approved), by_rrn(other, a1.fields["37"])):
                answer = await other.exchange(query)
                assert (answer.fields["39"], outcome(answer)) == ("601", "U   ")
                assert "38" not in answer.fields and "4" not in answer.fields

            # none of it went upstream, none of it counted as a retransmission
            assert len(host.received) == host_heard
            after = await metric(sut.running.metrics_port or 0, "forecourt_duplicates_total")
            assert after == duplicates
            answered = await metric(
                sut.running.metrics_port or 0, 'forecourt_status_queries_total{answered="U"}'
            )
            assert answered == 5
        db = tmp_path / "journal.db"
        async with open_journal(db) as journal:
            rows = await journal.list(limit=50)
            original = next(r for r in rows if r.stan == approved.fields["11"])
            twin = next(r for r in rows if r.stan == control.fields["11"])
            events = [e.kind for e in await journal.events(original.txn_id)]
            unasked = [e.kind for e in await journal.events(twin.txn_id)]
    # no transaction of the query's own or of the original's kind, the original unchanged
    assert {r.request_mti for r in rows} == {"1200", "1420"}
    assert len([r for r in rows if r.request_mti == "1200"]) == 4
    assert original.state == "approved" and original.approved_amount == 4200
    assert events == unasked
    queries = _rows(db, "SELECT terminal_id, asked_by, answered FROM status_queries ORDER BY id")
    assert len(queries) == 11
    assert queries[-1] == ("T0000002", "rrn", "U")
    assert ("T0000001", "rrn", "A") in queries


async def test_1987_administrative_request_is_function_not_supported(tmp_path: Path) -> None:
    async with started_switch(tmp_path, dialect="iso87ascii") as sut, sut.terminal() as t:
        heard = len(sut.host.received)
        fields = {
            "3": "690000",
            "7": time.strftime("%m%d%H%M%S", time.gmtime()),
            "11": t.next_stan(),
            "41": t.terminal_id,
        }
        answer = await t.exchange(Message("0600", fields))
        assert (answer.mti, answer.fields["39"]) == ("0610", "40")
        assert len(sut.host.received) == heard
