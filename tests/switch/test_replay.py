"""An old request is never approved twice: field 7 and the duplicate check beyond the window.

A MAC'd request copied off the wire stays valid while its key lives (up to a day);
field 7 outside the tolerance is refused before anything else happens, and within
it the duplicate check holds even when the in-memory window has moved on.
"""

from __future__ import annotations

import calendar
import random
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
import structlog
import trio
from forecourt.codecs.message import Message
from forecourt.codecs.mti import RequestKey
from forecourt.switch.config import ConfigError, parse_config
from forecourt.switch.journal import new_txn_id
from forecourt.switch.matching import FinishedRequest, LetGo, TerminalRequests, _Segment
from forecourt.switch.transmission_time import (
    NoTransmissionTime,
    TransmissionTimeOutside,
    check_transmission_time,
    earliest_original,
    transmission_epoch,
)

from tests.switch.harness import _unused_port, started_switch

LOG = structlog.get_logger("test")


def field7(at: float) -> str:
    return time.strftime("%m%d%H%M%S", time.gmtime(at))


def utc(*parts: int) -> float:
    return float(calendar.timegm((*parts, 0, 0, 0)))


def sent_at(message: Message, at: float) -> Message:
    """The same request, sent at `at` by its field 7 (and local date and time)."""
    gm = time.gmtime(at)
    if "13" in message.fields:
        return message.with_fields({7: field7(at), 12: time.strftime("%H%M%S", gm)})
    return message.with_fields({7: field7(at), 12: time.strftime("%y%m%d%H%M%S", gm)})


async def metric(port: int, name: str) -> float:
    """One sample of the switch's /metrics (0 when absent), over a real socket."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n")
        data = b""
        while chunk := await stream.receive_some(65536):
            data += chunk
    for line in data.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0


# -- field 7 on the wire ------------------------------------------------------


@pytest.mark.parametrize(("dialect", "code"), [("ifsf", "902"), ("iso87ascii", "12")])
async def test_a_purchase_sent_12_minutes_ago_is_refused_and_never_reaches_the_host(
    tmp_path: Path, dialect: str, code: str
) -> None:
    async with started_switch(tmp_path, dialect=dialect) as sut, sut.terminal() as terminal:
        stale = sent_at(terminal.purchase(4250), time.time() - 720)
        answer = await terminal.exchange(stale)
        assert answer.fields["39"] == code
        assert answer.fields["11"] == stale.fields["11"]
        # refused by the switch itself, MAC'd like any answer to a known terminal
        assert terminal.tak is not None and answer.raw is not None
        assert terminal.tak.verify(answer.raw[:-8], answer.raw[-8:])
        # the same purchase sent now is approved: only field 7 made the difference
        fresh = await terminal.exchange(terminal.purchase(4250))
        assert fresh.fields["39"] in ("000", "00")
    assert [m.fields["4"] for m in sut.host.received if m.mti[1] == "2"] == ["000000004250"]


async def test_an_authorisation_from_a_clock_ahead_by_12_minutes_is_refused(
    tmp_path: Path,
) -> None:
    async with started_switch(tmp_path) as sut, sut.terminal() as terminal:
        ahead = sent_at(terminal.preauth(5000), time.time() + 720)
        assert (await terminal.exchange(ahead)).fields["39"] == "902"
    assert not [m for m in sut.host.received if m.mti[1] == "1"]


async def test_a_purchase_without_field_7_is_a_format_error(tmp_path: Path) -> None:
    async with started_switch(tmp_path) as sut, sut.terminal() as terminal:
        answer = await terminal.exchange(terminal.purchase(4250).with_fields({7: None}))
        assert answer.fields["39"] == "904"
    assert not [m for m in sut.host.received if m.mti[1] == "2"]


async def test_a_reversal_sent_late_from_saf_is_still_taken(tmp_path: Path) -> None:
    async with started_switch(tmp_path) as sut, sut.terminal() as terminal:
        purchase = terminal.purchase(4250)
        assert (await terminal.exchange(purchase)).fields["39"] == "000"
        # the terminal kept it in its SAF for two hours, with the field 7 of its first try
        late = sent_at(terminal.reversal(purchase), time.time() - 7200)
        assert (await terminal.exchange(late)).fields["39"] == "400"


async def test_a_group_with_the_check_off_takes_any_field_7(tmp_path: Path) -> None:
    async with started_switch(tmp_path, tolerance_s=0) as sut, sut.terminal() as terminal:
        stale = sent_at(terminal.purchase(4250), time.time() - 7200)
        assert (await terminal.exchange(stale)).fields["39"] == "000"


# -- beyond the duplicate window --------------------------------------------


async def test_a_copy_after_the_window_moved_on_gets_the_journalled_answer(
    tmp_path: Path,
) -> None:
    port = _unused_port()
    over: dict[str, Any] = {"duplicate_window": 1, "metrics_port": port}
    async with started_switch(tmp_path, **over) as sut, sut.terminal() as terminal:
        original = terminal.purchase(1111)
        first = await terminal.exchange(original)
        assert first.fields["39"] == "000"
        for amount in (2222, 3333):  # the window (one entry) lets the original go
            assert (await terminal.exchange(terminal.purchase(amount))).fields["39"] == "000"
        # the very bytes again: same STAN, same field 7, same MAC
        again = await terminal.exchange(original)
        assert again.fields["39"] == "000"
        assert again.fields["38"] == first.fields["38"]
        assert again.fields["11"] == original.fields["11"]
        amounts = [m.fields["4"] for m in sut.host.received if m.mti[1] == "2"]
        assert amounts == ["000000001111", "000000002222", "000000003333"]  # never a second 1111
        assert await metric(port, 'forecourt_duplicate_journal_lookups_total{why="beyond_window"}')


async def test_a_tiny_window_reads_the_journal_for_a_copy_only(tmp_path: Path) -> None:
    port = _unused_port()
    over: dict[str, Any] = {"duplicate_window": 1, "metrics_port": port}
    async with started_switch(tmp_path, **over) as sut, sut.terminal() as terminal:
        original = terminal.purchase(1000)
        assert (await terminal.exchange(original)).fields["39"] == "000"
        for amount in range(1001, 1011):  # new purchases: in no let-go filter, no read
            assert (await terminal.exchange(terminal.purchase(amount))).fields["39"] == "000"
        name = 'forecourt_duplicate_journal_lookups_total{why="beyond_window"}'
        assert await metric(port, name) == 0.0
        assert (await terminal.exchange(original)).fields["39"] == "000"
        assert await metric(port, name) == 1.0
    assert len([m for m in sut.host.received if m.mti[1] == "2"]) == 11


async def test_the_hot_path_does_not_read_the_journal_while_the_window_covers_the_tolerance(
    tmp_path: Path,
) -> None:
    port = _unused_port()
    async with started_switch(tmp_path, metrics_port=port) as sut, sut.terminal() as terminal:
        for amount in range(1000, 1010):
            assert (await terminal.exchange(terminal.purchase(amount))).fields["39"] == "000"
        name = "forecourt_duplicate_journal_lookups_total"
        assert await metric(port, name + '{why="beyond_window"}') == 0.0
        assert await metric(port, name + '{why="cluster"}') == 0.0


def test_the_window_knows_how_far_back_it_is_complete_and_what_it_let_go() -> None:
    window = TerminalRequests(window=2)
    now = time.time()
    first, new = RequestKey("2", "T1", "000001"), RequestKey("2", "T1", "000099")
    assert not window.left_since(first, now - 600)  # nothing let go yet: complete
    for stan in ("000001", "000002", "000003"):
        window.remember(("2", "T1", stan), FinishedRequest(new_txn_id(), "000000001000"))
    # the first entry (received just now, by its id) is gone: a copy of it must be
    # looked up in the journal; a key never seen is known new without a read
    assert window.left_since(first, now - 600)
    assert not window.left_since(new, now - 600)
    assert not window.left_since(first, time.time() + 1)  # received before: not its original
    fresh = TerminalRequests(window=10)
    fresh.warmed_after(now - 60)  # a start that warmed only the last minute
    assert fresh.left_since(new, now - 600)
    assert not fresh.left_since(new, now - 30)


def test_the_let_go_filters_forget_after_their_time_and_say_so() -> None:
    let_go = LetGo(keep_s=0.0, segments=2)
    now = time.time()
    for i in range(_Segment.KEYS * 3):  # three segments: the first ones are dropped
        let_go.add(f"2\x1fT1\x1f{i:06d}", now - 100)
    assert let_go.complete_after == now - 100
    assert let_go.may_hold("2\x1fT1\x1fnever", now - 200)  # beyond what is kept: maybe
    assert not let_go.may_hold("2\x1fT1\x1fnever", now - 50)  # received later than all
    kept = LetGo(keep_s=3600.0)
    for i in range(_Segment.KEYS):  # a full segment: 16 bits a key
        kept.add(f"2\x1fT1\x1f{i:06d}", now - 100)
    assert all(kept.may_hold(f"2\x1fT1\x1f{i:06d}", now - 200) for i in range(0, 65536, 97))
    false = sum(kept.may_hold(f"2\x1fT2\x1f{i:06d}", now - 200) for i in range(10_000))
    assert false < 200  # ~0.5 % expected: each costs one journal read, never a wrong answer


# -- field 7 as a time ----------------------------------------------------------


def test_field_7_has_no_year_the_nearest_is_taken() -> None:
    new_year = utc(2027, 1, 1, 0, 0, 10)
    assert transmission_epoch("1231235930", new_year) == utc(2026, 12, 31, 23, 59, 30)
    eve = utc(2026, 12, 31, 23, 59, 50)
    assert transmission_epoch("0101000020", eve) == utc(2027, 1, 1, 0, 0, 20)
    # 29 February: in a leap year only
    assert transmission_epoch("0229120000", utc(2028, 2, 29, 12, 1, 0)) == utc(2028, 2, 29, 12)
    assert transmission_epoch("0229120000", utc(2026, 12, 1, 12, 0, 0)) is None
    for bad in ("1301000000", "0132000000", "0101240000", "010100000", "01010000AA", None):
        assert transmission_epoch(bad, new_year) is None


def test_field_7_within_half_a_year_reads_back_as_the_time_it_was_sent() -> None:
    rng = random.Random(7)
    for _ in range(3000):
        now = rng.uniform(utc(2020, 1, 1, 0, 0, 0), utc(2040, 1, 1, 0, 0, 0))
        sent = float(int(now + rng.uniform(-170, 170) * 86400))
        assert transmission_epoch(field7(sent), now) == sent


def test_a_purchase_sent_across_new_year_is_within_the_tolerance() -> None:
    purchase = Message("1200", {"7": "1231235930", "11": "000001"})
    check_transmission_time(purchase, 600.0, LOG, now=utc(2027, 1, 1, 0, 0, 10))
    check_transmission_time(purchase, 600.0, LOG, now=utc(2026, 12, 31, 23, 50, 0))
    with pytest.raises(TransmissionTimeOutside):
        check_transmission_time(purchase, 600.0, LOG, now=utc(2027, 1, 1, 0, 10, 0))
    with pytest.raises(NoTransmissionTime):
        check_transmission_time(purchase.with_fields({7: None}), 600.0, LOG)
    check_transmission_time(purchase.with_fields({7: None}), 0.0, LOG)  # the check off


def test_the_original_of_a_copy_is_received_no_earlier_than_field_7_less_the_tolerance() -> None:
    now = utc(2026, 12, 1, 12, 0, 0)
    copy = Message("1220", {"7": field7(now - 3600)})
    assert earliest_original(copy, 600.0, now) == now - 3600 - 600
    assert earliest_original(copy, 0.0, now) is None
    assert earliest_original(copy.with_fields({7: None}), 600.0, now) is None
    # ahead by more than the tolerance: nothing bounds when its original came
    assert earliest_original(Message("1220", {"7": field7(now + 900)}), 600.0, now) is None


def test_the_tolerance_is_a_terminal_group_key() -> None:
    def doc(value: object) -> dict[str, Any]:
        return {
            "terminal_groups": [{"name": "site", "transmission_time_tolerance_s": value}],
        }

    assert parse_config(doc(120)).terminal_groups[0].transmission_time_tolerance_s == 120.0
    assert parse_config(doc(0)).terminal_groups[0].transmission_time_tolerance_s == 0.0
    with pytest.raises(ConfigError, match=r"terminal_groups\[0\]\.transmission_time_tolerance_s"):
        parse_config(doc(-1))
    default = parse_config({"terminal_groups": [{"name": "site"}]})
    assert default.terminal_groups[0].transmission_time_tolerance_s == 600.0


async def test_a_copy_after_a_restart_gets_the_journalled_answer(tmp_path: Path) -> None:
    async with started_switch(tmp_path, duplicate_window=1) as sut:
        async with sut.terminal() as terminal:
            original = terminal.purchase(1111)
            first = await terminal.exchange(original)
            assert (await terminal.exchange(terminal.purchase(2222))).fields["39"] == "000"
        await sut.restart()  # the start warms a window of one: the original is not in it
        async with sut.terminal() as terminal:
            again = await terminal.exchange(original)
        assert again.fields["39"] == first.fields["39"] == "000"
        amounts = [m.fields["4"] for m in sut.host.received if m.mti[1] == "2"]
        assert amounts == ["000000001111", "000000002222"]


async def test_a_stan_used_again_long_after_is_a_new_purchase(tmp_path: Path) -> None:
    async with started_switch(tmp_path, duplicate_window=1) as sut, sut.terminal() as terminal:
        first = terminal.purchase(1111)
        assert (await terminal.exchange(first)).fields["39"] == "000"
        assert (await terminal.exchange(terminal.purchase(2222))).fields["39"] == "000"
        # the first purchase is an hour old now, as if the terminal's STANs came round
        with sqlite3.connect(tmp_path / "journal.db", timeout=10) as db:
            db.execute("UPDATE transactions SET received_at = received_at - 3600")
        # the same STAN and amount, sent now: no copy of a request of an hour ago
        again = first.with_fields({7: field7(time.time())})
        assert (await terminal.exchange(again)).fields["39"] == "000"
        amounts = [m.fields["4"] for m in sut.host.received if m.mti[1] == "2"]
        assert amounts == ["000000001111", "000000002222", "000000001111"]
