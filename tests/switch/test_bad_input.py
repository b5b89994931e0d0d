"""Bad input over real sockets: each case is answered or closed, and others go on."""

from __future__ import annotations

from pathlib import Path

import trio
from forecourt.codecs.dialect import encode

from tests.switch.harness import SwitchUnderTest, started_switch


async def _others_still_served(sut: SwitchUnderTest) -> None:
    async with sut.terminal("T0000002") as other:
        answer = await other.exchange(other.purchase(777))
        assert answer.fields["39"] == "000"


async def test_identifiable_but_undecodable_gets_904(tmp_path: Path) -> None:
    async with started_switch(tmp_path) as sut, sut.terminal() as t:
        request = t.purchase(500)
        payload = encode(t.dialect, request)[:-3]  # field 49 cut short
        await t.send_raw(len(payload).to_bytes(2, "big") + payload)
        answer = await t.receive()
        assert answer.fields["39"] == "904"
        assert answer.fields["11"] == request.fields["11"]
        assert answer.fields["41"] == "T0000001"
        # the connection stays open and usable
        assert (await t.exchange(t.purchase(501))).fields["39"] == "000"
        await _others_still_served(sut)
        assert not any(m.fields.get("4") == "000000000500" for m in sut.host.received)


async def test_unidentifiable_frame_closes_the_connection(tmp_path: Path) -> None:
    async with started_switch(tmp_path) as sut:
        async with sut.terminal() as t:
            garbage = b"\x00\xffNOT AN ISO MESSAGE"
            await t.send_raw(len(garbage).to_bytes(2, "big") + garbage)
            assert await t.closed()
        await _others_still_served(sut)


async def test_oversize_length_closes_the_connection(tmp_path: Path) -> None:
    async with started_switch(tmp_path, max_frame=1024) as sut:
        async with sut.terminal() as t:
            await t.send_raw((5000).to_bytes(2, "big") + b"1200")
            assert await t.closed(timeout=2)
        await _others_still_served(sut)


async def test_slowloris_is_closed_at_the_idle_timeout(tmp_path: Path) -> None:
    async with started_switch(tmp_path, idle_timeout_s=1.0) as sut:
        async with sut.terminal() as t:
            await t.send_raw(b"\x00\x40" + b"1200")  # 64 bytes announced, 4 sent
            started = trio.current_time()
            await trio.sleep(0.5)
            await t.send_raw(b"\xf0")  # a trickle does not push the deadline back
            assert await t.closed(timeout=3)
            assert trio.current_time() - started < 2.5
        await _others_still_served(sut)


async def test_too_many_connections_refused_at_accept(tmp_path: Path) -> None:
    async with started_switch(tmp_path, max_connections=2) as sut:
        async with sut.terminal() as first, sut.terminal("T0000002") as second:
            assert (await first.exchange(first.purchase(100))).fields["39"] == "000"
            async with sut.terminal() as third:
                assert await third.closed(timeout=2)
            assert (await second.exchange(second.purchase(100))).fields["39"] == "000"
        # once a slot is free, connections are accepted again
        await _others_still_served(sut)


async def test_link_down_answers_912_within_the_timeout(tmp_path: Path) -> None:
    async with (
        started_switch(tmp_path, link_up=False, request_timeout_s=2.0) as sut,
        sut.terminal() as t,
    ):
        started = trio.current_time()
        answer = await t.exchange(t.purchase(100))
        assert answer.fields["39"] == "912"
        assert trio.current_time() - started < 2.0


async def test_link_full_answers_912_at_once(tmp_path: Path) -> None:
    async with (
        started_switch(tmp_path, link_max_in_flight=1, request_timeout_s=5.0) as sut,
        sut.terminal() as slow,
        sut.terminal("T0000002") as fast,
    ):
        await slow.send(slow.purchase(200000))  # holds the link's only slot for 2 s
        await trio.sleep(0.2)
        started = trio.current_time()
        answer = await fast.exchange(fast.purchase(100))
        assert answer.fields["39"] == "912"
        assert trio.current_time() - started < 1.0
        assert (await slow.receive(timeout=5)).fields["39"] == "000"


async def test_shutdown_lets_in_flight_transactions_finish(tmp_path: Path) -> None:
    from forecourt.switch.journal import open_journal

    async with started_switch(tmp_path, request_timeout_s=5.0) as sut, sut.terminal() as t:
        await t.send(t.purchase(200000))  # the host answers after 2 s
        await trio.sleep(0.3)
        sut.stop.set()
        answer = await t.receive(timeout=5)
        assert answer.fields["39"] == "000"
    async with open_journal(tmp_path / "journal.db") as journal:
        rows = await journal.list(limit=5)
    assert [r.state for r in rows] == ["approved"]
