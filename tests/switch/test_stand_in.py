"""Stand-in: the switch approves a purchase under its floor limit while the acquirer is down.

Real sockets throughout: the switch in-process, the small host of the harness (or
one that comes up late, `LateHost`), terminals MAC'ing their requests, and the
journal read from its SQLite file. No link: the acquirer's port has nobody on it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio
from forecourt.codecs.dialect import get_dialect
from forecourt.codecs.fields import OriginalData, OriginalElements
from forecourt.codecs.message import Message
from forecourt.switch.config import ConfigError, parse_config
from forecourt.switch.journal.sqlite import SqliteReader

from tests.switch.harness import TEST_PAN, SmallHost, SwitchUnderTest, _unused_port, started_switch
from tests.switch.test_journal_cli import run as run_cli
from tests.switch.test_metrics import get

ROUTES = [{"name": "cards", "acquirer": "bank", "prefixes": ["4761"]}]
OTHER_PAN = "5100000000000008"  # routed to the bank by default, no card product


def stand_in(signature: int = 2000, pin: int = 3000, offline: int = 5000) -> dict[str, Any]:
    floors = {"product": "cards", "signature": signature, "pin": pin, "offline": offline}
    return {"enabled": True, "currency": "978", "floor_limits": [floors]}


@attrs.define
class LateHost(SmallHost):
    """The small host, listening only once `up` is set, on the port the switch was given."""

    up: trio.Event = attrs.field(factory=trio.Event)

    async def serve(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started(0)
        await self.up.wait()
        listeners = await trio.open_tcp_listeners(self.port, host="127.0.0.1")
        async with trio.open_nursery() as nursery:
            await trio.serve_listeners(self._connection, listeners, handler_nursery=nursery)

    def come_up(self, sut: SwitchUnderTest) -> None:
        self.port = sut.config.acquirers[0].port
        self.up.set()


@contextmanager
def journal(sut: SwitchUnderTest) -> Iterator[SqliteReader]:
    reader = SqliteReader(sut.config.journal_path)
    try:
        yield reader
    finally:
        reader.close()


def received(host: SmallHost, prefix: str) -> list[int]:
    """Where, in what the host received, the messages whose MTI starts with `prefix` are."""
    return [i for i, m in enumerate(host.received) if m.mti.startswith(prefix)]


async def until(condition: Any, timeout: float = 10.0) -> None:
    with trio.fail_after(timeout):
        while not condition():
            await trio.sleep(0.02)


def purchase_with(t: Any, amount: int, method: str, pan: str = TEST_PAN) -> Message:
    request: Message = t.purchase(amount, pan=pan)
    if method == "pin":  # an online PIN block: nobody can verify it while the host is down
        return request.with_fields({52: "0123456789ABCDEF"})
    if method == "offline":  # the chip verified the PIN (field 22 positions 8-9 = 1, 1)
        return request.with_fields({22: "C10101C11001"})
    return request


# -- stand-in off: unchanged ---------------------------------------------------------


@pytest.mark.parametrize("configured", [False, True])
async def test_off_no_link_is_912(tmp_path: Path, configured: bool) -> None:
    over: dict[str, Any] = {"routes": ROUTES}
    if configured:  # the section written, but not enabled
        over["stand_in"] = {**stand_in(), "enabled": False}
    async with started_switch(tmp_path, link_up=False, **over) as sut, sut.terminal() as t:
        answer = await t.exchange(t.purchase(1000))
    assert answer.fields["39"] == "912"
    assert "38" not in answer.fields
    with journal(sut) as reader:
        (row,) = reader.list_transactions(10, None, None)
    assert row.state == "declined" and "stand_in" not in row.flags


async def test_off_timeout_is_911_and_reversed(tmp_path: Path) -> None:
    async with started_switch(tmp_path, routes=ROUTES) as sut:
        async with sut.terminal() as t:
            answer = await t.exchange(t.purchase(300000))  # the host never answers
        assert answer.fields["39"] == "911"
        await until(lambda: received(sut.host, "14"))
        assert not received(sut.host, "122")  # no advice: nothing was approved


# -- under and over the floor, per verification method, no link ---------------------


@pytest.mark.parametrize(
    ("method", "amount", "code"),
    [
        ("signature", 2000, "000"),  # at the floor
        ("signature", 2001, "912"),  # over it
        ("pin", 2500, "000"),
        ("pin", 3001, "912"),
        ("offline", 4999, "000"),
        ("offline", 5001, "912"),
    ],
)
async def test_floor_per_verification_method(
    tmp_path: Path, method: str, amount: int, code: str
) -> None:
    over = {"routes": ROUTES, "stand_in": stand_in()}
    async with started_switch(tmp_path, link_up=False, **over) as sut, sut.terminal() as t:
        answer = await t.exchange(purchase_with(t, amount, method))
    assert answer.fields["39"] == code
    with journal(sut) as reader:
        (row,) = reader.list_transactions(10, None, None)
        events = reader.events(row.txn_id)
        saf = reader.saf_entries_of([row.txn_id])
    if code == "912":
        assert row.state == "declined" and "stand_in" not in row.flags and not saf
        return
    # the switch's own approval code and RRN, journalled with the stand-in flag
    assert answer.fields["38"].startswith("S") and len(answer.fields["38"]) == 6
    assert answer.fields["37"].isdigit() and len(answer.fields["37"]) == 12
    assert row.state == "approved" and "stand_in" in row.flags
    assert (row.auth_code, row.rrn) == (answer.fields["38"], answer.fields["37"])
    assert row.approved_amount == amount
    (approved,) = [e for e in events if e.kind == "stand_in_approved"]
    detail = json.loads(approved.detail or "{}")
    assert detail["verification"] == method and detail["why"] == "no_link"
    # the advice due now, its reversal parked behind it
    assert [(e.mti, e.state) for e in saf] == [("1220", "pending"), ("1420", "pending")]
    assert saf[0].next_attempt_at < saf[1].next_attempt_at


async def test_no_product_and_not_a_purchase_are_912(tmp_path: Path) -> None:
    over = {"routes": ROUTES, "stand_in": stand_in()}
    async with started_switch(tmp_path, link_up=False, **over) as sut, sut.terminal() as t:
        no_product = await t.exchange(t.purchase(100, pan=OTHER_PAN))
        preauth = await t.exchange(t.preauth(100))
        refund = await t.exchange(t.purchase(100).with_fields({3: "200000"}))
        other_currency = await t.exchange(t.purchase(100).with_fields({49: "840"}))
    for answer in (no_product, preauth, refund, other_currency):
        assert answer.fields["39"] == "912", answer.mti


async def test_the_stand_in_flag_in_journal_list_show_and_totals(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    over = {"routes": ROUTES, "stand_in": stand_in()}
    async with started_switch(tmp_path, link_up=False, **over) as sut, sut.terminal() as t:
        await t.sign_on()
        answer = await t.exchange(t.purchase(1200))
        assert answer.fields["39"] == "000"
        with journal(sut) as reader:
            (row,) = reader.list_transactions(10, None, None)
            shift = reader.open_shift_of("T0000001")
    assert shift is not None
    d = str(tmp_path)
    capsys.readouterr()
    assert run_cli("journal", "list", "--data-dir", d) == 0
    assert "stand_in" in capsys.readouterr().out
    assert run_cli("journal", "show", row.txn_id, "--data-dir", d) == 0
    out = capsys.readouterr().out
    assert "stand_in_approved" in out and answer.fields["38"] in out and TEST_PAN not in out
    totals = ("journal", "totals", "--terminal", "T0000001", "--shift", shift, "--data-dir", d)
    assert run_cli(*totals) == 0
    assert [line for line in capsys.readouterr().out.splitlines() if "stand_in" in line]


# -- a timeout before the answer: the reversal, then the advice ----------------------


async def test_timeout_reversal_then_advice(tmp_path: Path) -> None:
    host = SmallHost(get_dialect("ifsf"))
    host.advice_codes = ["909", "909"]  # the reversal is refused twice: it is retried
    over = {"routes": ROUTES, "stand_in": stand_in(signature=500000)}
    async with started_switch(tmp_path, host=host, **over) as sut:
        async with sut.terminal() as t:
            request = t.purchase(300000)  # the host never answers it
            answer = await t.exchange(request)
        assert answer.fields["39"] == "000"
        await until(lambda: received(host, "122"))
        await trio.sleep(0.3)
        with journal(sut) as reader:
            (row,) = reader.list_transactions(10, None, None)
            kinds = [e.kind for e in reader.events(row.txn_id)]
    original, *_ = received(host, "120")
    reversals, advices = received(host, "14"), received(host, "122")
    assert len(reversals) == 3 and len(advices) == 1  # 1420, 1421, 1421; then the advice
    assert original < reversals[0] and reversals[-1] < advices[0]
    reversal, advice = host.received[reversals[0]], host.received[advices[0]]
    named = OriginalData.decode(reversal.fields["56"])
    assert (named.mti, named.stan) == ("1200", host.received[original].fields["11"])
    assert advice.fields["25"] == "1002"  # issuer timed out on the original request
    assert (advice.fields["38"], advice.fields["37"]) == (answer.fields["38"], answer.fields["37"])
    assert advice.fields["2"] == TEST_PAN and advice.fields["4"] == request.fields["4"]
    assert "52" not in advice.fields and advice.fields["39"] == "000"
    # the stand-in approval stands: the reversal was the timed-out request's
    assert row.state == "approved" and "stand_in" in row.flags
    assert kinds.index("timed_out_request_reversed") < kinds.index("advice_delivered")


async def test_a_track_only_purchase_is_advised_by_pan_and_expiry(tmp_path: Path) -> None:
    over = {"routes": ROUTES, "stand_in": stand_in(signature=500000)}
    async with started_switch(tmp_path, **over) as sut:
        async with sut.terminal() as t:
            track = t.purchase(300000).with_fields({2: None, 35: f"{TEST_PAN}=29121010000"})
            assert (await t.exchange(track)).fields["39"] == "000"
        await until(lambda: received(sut.host, "122"))
    (advice,) = [m for m in sut.host.received if m.mti == "1220"]
    assert (advice.fields["2"], advice.fields["14"]) == (TEST_PAN, "2912")
    assert "35" not in advice.fields


# -- delivery when the link comes back; metrics and totals ---------------------------


async def test_advice_delivered_when_the_link_is_back_metrics_and_totals(tmp_path: Path) -> None:
    host = LateHost(get_dialect("ifsf"))
    over = {"routes": ROUTES, "stand_in": stand_in(), "metrics_port": _unused_port()}
    async with started_switch(tmp_path, link_up=False, host=host, **over) as sut:
        async with sut.terminal() as t:
            await t.sign_on()  # opens a shift
            answers = [await t.exchange(purchase_with(t, n, "signature")) for n in (700, 800)]
            over_floor = await t.exchange(t.purchase(9000))
        assert [a.fields["39"] for a in answers] == ["000", "000"]
        assert over_floor.fields["39"] == "912"
        await trio.sleep(1.0)
        assert not host.received  # nobody to deliver to: the advices wait
        host.come_up(sut)
        await until(lambda: len(received(host, "122")) == 2)
        await trio.sleep(0.3)
        assert sut.running.metrics_port is not None
        _, _, body = await get(sut.running.metrics_port, "/metrics")
        with journal(sut) as reader:
            shift = reader.open_shift_of("T0000001")
            assert shift is not None
            totals = reader.totals("T0000001", shift)
    text = body.decode()
    assert 'forecourt_stand_in_approvals_total{link="bank",verification="signature"} 2.0' in text
    assert 'forecourt_stand_in_advices_delivered_total{link="bank"} 2.0' in text
    assert {m.fields["38"] for m in host.received if m.mti == "1220"} == {
        a.fields["38"] for a in answers
    }
    assert totals.get("stand_in") == (2, 1500)
    assert totals.get("debit") == (2, 1500)  # stand-in approvals are debits like any other
    assert totals.get("declined") == (1, 9000)


# -- the terminal reverses a stand-in approval: a reversal follows the advice ---------


async def test_terminal_reversal_follows_the_advice(tmp_path: Path) -> None:
    host = LateHost(get_dialect("ifsf"))
    host.advice_codes = ["909"]  # the advice's first attempt is refused
    async with started_switch(
        tmp_path, link_up=False, host=host, routes=ROUTES, stand_in=stand_in()
    ) as sut:
        async with sut.terminal() as t:
            purchase = t.purchase(1500)
            approved = await t.exchange(purchase)
            reversed_ = await t.exchange(t.reversal(purchase))
        assert approved.fields["39"] == "000" and reversed_.fields["39"] == "400"
        host.come_up(sut)
        await until(lambda: received(host, "14"))
        await trio.sleep(0.3)
        with journal(sut) as reader:
            rows = {r.request_mti: r for r in reader.list_transactions(10, None, None)}
    advices, reversals = received(host, "122"), received(host, "14")
    assert len(advices) == 2 and len(reversals) == 1  # 1220 refused, 1221, then the 1420
    assert advices[-1] < reversals[0]
    reversal = host.received[reversals[0]]
    named = OriginalData.decode(reversal.fields["56"])
    assert named.mti == "1220" and reversal.fields["37"] == approved.fields["37"]
    assert rows["1200"].state == "reversed"
    assert rows["1420"].state == "answered_locally"


async def test_partial_reversal_of_a_stand_in_keeps_the_final_amount(tmp_path: Path) -> None:
    host = LateHost(get_dialect("ifsf"))
    async with started_switch(
        tmp_path, link_up=False, host=host, routes=ROUTES, stand_in=stand_in()
    ) as sut:
        async with sut.terminal() as t:
            purchase = t.purchase(1500)
            approved = await t.exchange(purchase)
            partial = await t.exchange(t.reversal(purchase, final_amount=900))
        assert approved.fields["39"] == "000" and partial.fields["39"] == "400"
        host.come_up(sut)
        await until(lambda: received(host, "14"))
        await trio.sleep(0.3)
        with journal(sut) as reader:
            rows = {r.request_mti: r for r in reader.list_transactions(10, None, None)}
            saf = reader.saf_entries_of([rows["1200"].txn_id])
    (advice,), (reversal,) = received(host, "122"), received(host, "14")
    assert advice < reversal
    sent = host.received[reversal]
    assert OriginalData.decode(sent.fields["56"]).mti == "1220"
    assert sent.fields["4"] == f"{900:012d}" and sent.fields["38"] == approved.fields["38"]
    assert rows["1200"].state == "approved" and rows["1200"].approved_amount == 900
    assert all(e.state == "done" for e in saf)  # the full reversal parked for it went too


async def test_terminal_gone_before_a_stand_in_answer_reverses_it(tmp_path: Path) -> None:
    over = {"routes": ROUTES, "stand_in": stand_in(signature=500000)}
    async with started_switch(tmp_path, **over) as sut:
        async with sut.terminal() as t:
            await t.send(t.purchase(300000))  # the host never answers: stand-in after 1 s
            await trio.sleep(0.3)
        await until(lambda: len(received(sut.host, "14")) == 2)
        await trio.sleep(0.3)
        with journal(sut) as reader:
            (row,) = reader.list_transactions(10, None, None)
    # the timed-out request's reversal, the advice, then the stand-in approval's reversal
    mtis = [m.mti for m in sut.host.received if m.mti[1] in "24"]
    assert mtis == ["1200", "1420", "1220", "1420"]
    assert OriginalData.decode(sut.host.received[-1].fields["56"]).mti == "1220"
    assert row.state == "reversed" and "stand_in" in row.flags


async def test_1987_advice_then_reversal_naming_it(tmp_path: Path) -> None:
    host = LateHost(get_dialect("iso87ascii"))
    over = {"routes": ROUTES, "stand_in": stand_in(), "dialect": "iso87ascii"}
    async with started_switch(tmp_path, link_up=False, host=host, **over) as sut:
        async with sut.terminal() as t:
            purchase = t.purchase(1500)
            approved = await t.exchange(purchase)
            reversed_ = await t.exchange(t.reversal(purchase))
        assert (approved.mti, approved.fields["39"]) == ("0210", "00")
        assert reversed_.fields["39"] == "00"
        host.come_up(sut)
        await until(lambda: received(host, "04"))
    (advice,), (reversal,) = received(host, "022"), received(host, "04")
    assert advice < reversal
    sent = host.received[advice]
    assert sent.fields["39"] == "00" and sent.fields["38"] == approved.fields["38"]
    assert OriginalElements.decode(host.received[reversal].fields["90"]).mti == "0220"


# -- configuration -------------------------------------------------------------------


def _config(stand_in_section: dict[str, Any]) -> None:
    doc = {
        "acquirers": [{"name": "bank", "host": "127.0.0.1", "port": 1}],
        "routes": ROUTES,
        "stand_in": stand_in_section,
    }
    parse_config(doc, source="test")


@pytest.mark.parametrize(
    ("section", "key", "reason"),
    [
        ({**stand_in(), "floor": 1}, "stand_in.floor", "unknown key"),
        (
            {"enabled": True, "floor_limits": [{"product": "cards", "chip": 1}]},
            "stand_in.floor_limits[0].chip",
            "unknown key",
        ),
        (
            {"enabled": True, "floor_limits": [{"product": "fleet"}]},
            "stand_in.floor_limits[0].product",
            "no route named 'fleet'",
        ),
        ({"enabled": True}, "stand_in.floor_limits", "no [[stand_in.floor_limits]]"),
        ({**stand_in(), "currency": "EUR"}, "stand_in.currency", "ISO 4217 numeric"),
        (
            {"floor_limits": [{"product": "cards", "pin": -1}]},
            "stand_in.floor_limits[0].pin",
            "must be 0..",
        ),
    ],
)
def test_bad_stand_in_config_is_refused(section: dict[str, Any], key: str, reason: str) -> None:
    with pytest.raises(ConfigError) as caught:
        _config(section)
    assert caught.value.path == key and reason in str(caught.value)


def test_stand_in_is_off_by_default() -> None:
    doc = {"acquirers": [{"name": "bank", "host": "127.0.0.1", "port": 1}]}
    assert not parse_config(doc).stand_in.enabled


def test_two_products_over_the_same_range_are_refused() -> None:
    doc = {
        "acquirers": [{"name": "bank", "host": "127.0.0.1", "port": 1}],
        "routes": [
            {"name": "debit", "acquirer": "bank", "prefixes": ["4761"]},
            {"name": "credit", "acquirer": "bank", "prefixes": ["4700-4799"]},
        ],
        "stand_in": {
            "enabled": True,
            "floor_limits": [
                {"product": "debit", "signature": 100},
                {"product": "credit", "signature": 100},
            ],
        },
    }
    with pytest.raises(ConfigError, match="overlap"):
        parse_config(doc)
    # a narrower product inside a wider one is the normal way to carve one out
    doc["routes"][1]["prefixes"] = ["47"]  # type: ignore[index]
    config = parse_config(doc).stand_in
    router = config.product_router()
    assert router.route("4761000000000000") == "debit"
    assert router.route("4799000000000000") == "credit"
