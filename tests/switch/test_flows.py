"""End-to-end flows through the switch over real sockets."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import trio
from forecourt.codecs.dialect import encode_with_mac
from forecourt.switch.journal import open_journal

from tests.switch.harness import started_switch


async def test_purchase_approved_with_mac(tmp_path: Path) -> None:
    async with started_switch(tmp_path) as sut, sut.terminal() as terminal:
        request = terminal.purchase(4250)
        answer = await terminal.exchange(request)
        assert answer.mti == "1210"
        assert answer.fields["39"] == "000"
        assert answer.fields["11"] == request.fields["11"]
        assert "2" not in answer.fields
        # the answer is MAC'd under the terminal's TAK
        assert answer.raw is not None
        assert terminal.tak is not None
        assert terminal.tak.verify(answer.raw[:-8], answer.raw[-8:])
        # the host saw the switch's own STAN and the acquirer id
        (seen,) = [m for m in sut.host.received if m.mti == "1200"]
        assert seen.fields["32"] == "12345678901"
        assert seen.fields["4"] == "000000004250"
    async with open_journal(tmp_path / "journal.db") as journal:
        rows = await journal.list(limit=10)
    assert [r.state for r in rows] == ["approved"]
    assert rows[0].masked_pan == "476173******0010"
    assert rows[0].acquirer_stan == seen.fields["11"]


async def test_decline_and_partial(tmp_path: Path) -> None:
    async with started_switch(tmp_path) as sut, sut.terminal() as terminal:
        declined = await terminal.exchange(terminal.purchase(100000))
        assert declined.fields["39"] == "100"
        partial = await terminal.exchange(terminal.purchase(400000))
        assert partial.fields["39"] == "002"
        assert partial.fields["4"] == "000000200000"


async def test_host_timeout_answers_911_and_reverses(tmp_path: Path) -> None:
    async with started_switch(tmp_path, request_timeout_s=0.3) as sut, sut.terminal() as t:
        answer = await t.exchange(t.purchase(300000))
        assert answer.fields["39"] == "911"
        with trio.fail_after(5):
            while not [m for m in sut.host.received if m.mti == "1420"]:
                await trio.sleep(0.02)
        (original,) = [m for m in sut.host.received if m.mti == "1200"]
        (reversal,) = [m for m in sut.host.received if m.mti == "1420"]
        assert reversal.fields["25"] == "4021"
        assert reversal.fields["56"].startswith("1200" + original.fields["11"])
        assert reversal.fields["4"] == original.fields["4"]
        with trio.fail_after(5):
            while True:
                async with open_journal(tmp_path / "journal.db") as journal:
                    rows = await journal.list(limit=10)
                if rows[0].state == "reversed":
                    break
                await trio.sleep(0.05)


async def test_retransmission_replayed_not_forwarded_twice(tmp_path: Path) -> None:
    async with started_switch(tmp_path) as sut, sut.terminal() as terminal:
        request = terminal.purchase(1234)
        first = await terminal.exchange(request)
        second = await terminal.exchange(request)
        assert first.fields == second.fields
        assert len([m for m in sut.host.received if m.mti == "1200"]) == 1
        # same key, different amount: duplicate transmission
        other = request.with_fields({4: "000000009999"})
        third = await terminal.exchange(other)
        assert third.fields["39"] == "913"
        assert len([m for m in sut.host.received if m.mti == "1200"]) == 1


async def test_retransmission_of_a_decline_replays_the_journalled_answer(tmp_path: Path) -> None:
    """The duplicate window keeps no answer bytes: a replay reads them from the journal."""
    async with started_switch(tmp_path) as sut, sut.terminal() as terminal:
        request = terminal.purchase(100000)
        first = await terminal.exchange(request)
        second = await terminal.exchange(request)
        assert first.fields["39"] == "100"
        assert second.fields == first.fields
        assert second.raw is not None and terminal.tak is not None
        assert terminal.tak.verify(second.raw[:-8], second.raw[-8:])
        assert len([m for m in sut.host.received if m.mti == "1200"]) == 1
        # the answer gone from the journal (pruned): a duplicate, never forwarded again
        with sqlite3.connect(tmp_path / "journal.db", timeout=10) as db:
            db.execute("UPDATE transactions SET response_raw = NULL")
        third = await terminal.exchange(request)
        assert third.fields["39"] == "913"
        assert len([m for m in sut.host.received if m.mti == "1200"]) == 1


async def test_duplicate_while_in_flight_is_not_forwarded(tmp_path: Path) -> None:
    async with started_switch(tmp_path, request_timeout_s=5.0) as sut, sut.terminal() as t:
        request = t.purchase(200000)  # the host takes 2 s
        await t.send(request)
        await trio.sleep(0.2)
        await t.send(request)
        answers = [await t.receive(timeout=5), await t.receive(timeout=5)]
        assert [a.fields["39"] for a in answers] == ["000", "000"]
        assert len([m for m in sut.host.received if m.mti == "1200"]) == 1


async def test_bad_mac_then_lock(tmp_path: Path) -> None:
    async with started_switch(tmp_path, mac_failures_before_lock=2) as sut:
        async with sut.terminal() as t:
            for expected in ("916", "916", "917"):
                request = t.purchase(100)
                payload = bytearray(encode_with_mac(t.dialect, request, t.tak.generate))  # type: ignore[union-attr]
                payload[-1] ^= 0x01
                await t.send_raw(len(payload).to_bytes(2, "big") + bytes(payload))
                answer = await t.receive()
                assert answer.fields["39"] == expected
            assert not [m for m in sut.host.received if m.mti == "1200"]
        # another terminal is unaffected
        async with sut.terminal("T0000002") as other:
            assert (await other.exchange(other.purchase(500))).fields["39"] == "000"


async def test_unknown_terminal_declined(tmp_path: Path) -> None:
    async with started_switch(tmp_path) as sut, sut.terminal("T0000009") as t:
        answer = await t.exchange(t.purchase(500))
        assert answer.fields["39"] != "000"
        assert not sut.host.received or all(m.mti != "1200" for m in sut.host.received)


async def test_pipelined_requests_on_one_connection(tmp_path: Path) -> None:
    async with started_switch(tmp_path, request_timeout_s=5.0) as sut, sut.terminal() as t:
        slow = t.purchase(200000)
        fast = t.purchase(700)
        await t.send(slow)
        await t.send(fast)
        first = await t.receive(timeout=5)
        assert first.fields["11"] == fast.fields["11"]
        second = await t.receive(timeout=5)
        assert second.fields["11"] == slow.fields["11"]


async def test_sign_on_delivers_new_tak_and_old_one_stays_in_grace(tmp_path: Path) -> None:
    from forecourt.codecs.network import NetworkFunction

    async with started_switch(tmp_path) as sut, sut.terminal() as t:
        old_tak = t.tak
        answer = await t.sign_on()
        assert answer.mti == "1814"
        assert answer.fields["39"] == "800"
        new_tak = t.tak
        assert old_tak is not None and new_tak is not None
        assert new_tak.kcv != old_tak.kcv
        # the new key works at once
        approved = await t.exchange(t.purchase(1500))
        assert approved.fields["39"] == "000"
        assert approved.raw is not None
        assert new_tak.verify(approved.raw[:-8], approved.raw[-8:])
        # a message still in flight under the old key is accepted in the grace window
        t.tak = old_tak
        assert (await t.exchange(t.purchase(1600))).fields["39"] == "000"
        # echo is answered by the switch itself, nothing goes upstream
        before = len(sut.host.received)
        assert (await t.exchange(t.network(NetworkFunction.ECHO))).fields["39"] == "800"
        assert len(sut.host.received) == before
        audit = sut.store.audit(owner="T0000001")
        assert any(entry.action == "rotate" for entry in audit)


async def test_a_locked_terminal_signs_on_to_end_its_lock(tmp_path: Path) -> None:
    """Locked, its TAK is suspect: a key change (under the TAK) is refused 917 like
    any request; a sign-on proven under the KEK's sign-on key ends the lock."""
    async with started_switch(tmp_path, mac_failures_before_lock=1) as sut, sut.terminal() as t:
        good = t.tak
        request = t.purchase(100)
        payload = bytearray(encode_with_mac(t.dialect, request, good.generate))  # type: ignore[union-attr]
        payload[-2] ^= 0x40
        await t.send_raw(len(payload).to_bytes(2, "big") + bytes(payload))
        assert (await t.receive()).fields["39"] == "916"
        assert (await t.exchange(t.purchase(100))).fields["39"] == "917"  # locked
        rotations = len(sut.store.audit(owner="T0000001"))
        assert (await t.key_change()).fields["39"] == "917"
        assert len(sut.store.audit(owner="T0000001")) == rotations
        assert (await t.sign_on()).fields["39"] == "800"
        assert t.tak is not None and t.tak.kcv != good.kcv  # type: ignore[union-attr]
        assert (await t.exchange(t.purchase(100))).fields["39"] == "000"
