"""The flow table's defects, each over real sockets: a test per case the issue lists.

Before the table, one hard-wired path forwarded anything it did not know as a sale,
answered echoes without 41 with 30, let a sign-off change nothing, and let one
sign-on end the process.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import trio
from forecourt.codecs.amounts import AVAILABLE_BALANCE, decode_field54
from forecourt.codecs.fields import OriginalData, OriginalElements
from forecourt.codecs.message import Message
from forecourt.codecs.network import NetworkFunction, network_request
from forecourt.switch.flows.table import TABLE, flow_for
from forecourt.switch.journal import open_journal

from tests.switch.harness import BALANCE, TEST_PAN, Terminal, started_switch


async def _rows(tmp_path: Path) -> list[str]:
    async with open_journal(tmp_path / "journal.db") as journal:
        return [f"{r.mti_class}:{r.state}" for r in await journal.list(limit=100)]


@pytest.mark.parametrize("mti", ["1304", "1604"])
async def test_file_action_and_administrative_never_go_upstream(tmp_path: Path, mti: str) -> None:
    async with started_switch(tmp_path, mac=False) as sut, sut.terminal() as t:
        # 301 (add record): a file action no flow serves; only 305, the parameter
        # download, is (tests/switch/test_params_download.py)
        request = t.purchase(5000).with_fields({24: "301"}, mti=mti)
        answer = await t.exchange(request)
        assert answer.mti == mti[:2] + "1" + mti[3]
        assert answer.fields["39"] == "115"  # requested function not supported
        assert not [m for m in sut.host.received if m.mti == mti]
        # nothing journalled approved, no reversal parked
        assert await _rows(tmp_path) == []
        assert (await t.exchange(t.purchase(1000))).fields["39"] == "000"


async def test_unknown_network_function_is_not_supported(tmp_path: Path) -> None:
    async with started_switch(tmp_path, mac=False) as sut, sut.terminal() as t:
        odd = Message("1804", {"11": t.next_stan(), "24": "899", "41": "T0000001"})
        assert (await t.exchange(odd)).fields["39"] == "115"
        assert not [m for m in sut.host.received if m.fields.get("24") == "899"]


@pytest.mark.parametrize("dialect", ["ifsf", "iso87ascii"])
async def test_balance_inquiry_relays_field_54_and_parks_no_reversal(
    tmp_path: Path, dialect: str
) -> None:
    async with started_switch(tmp_path, dialect=dialect) as sut, sut.terminal() as t:
        inquiry = t.preauth(0).with_fields({3: "310000", 4: None})
        answer = await t.exchange(inquiry)
        assert answer.fields["39"] in ("000", "00")
        (amount,) = decode_field54(answer.fields["54"])
        assert (amount.amount_type, amount.amount) == (AVAILABLE_BALANCE, BALANCE)
        assert [m.fields["3"] for m in sut.host.received if m.mti[1] == "1"] == ["310000"]
        async with open_journal(tmp_path / "journal.db") as journal:
            (row,) = await journal.list(limit=10)
            assert row.state == "approved"
            assert await journal.saf_entries_of([row.txn_id]) == []


def test_the_balance_inquiry_is_one_row_before_the_authorisation() -> None:
    inquiry = Message("1100", {"3": "310000", "11": "000001", "41": "T1"})
    preauth = Message("1100", {"3": "000000", "11": "000002", "41": "T1"})
    assert flow_for(inquiry).rules.name == "balance_inquiry"
    assert not flow_for(inquiry).rules.parks_reversal
    assert flow_for(preauth).rules.name == "authorisation"
    assert flow_for(Message("1900", {"11": "1"})).rules.name == "not_supported"
    assert len({row.flow.rules.name for row in TABLE}) >= 10


async def test_echo_without_terminal_id_is_answered(tmp_path: Path) -> None:
    async with started_switch(tmp_path, dialect="iso87ascii") as sut, sut.terminal() as t:
        echo = Message("0800", {"7": "1201093015", "11": "000777", "70": "301"})
        answer = await t.exchange(echo)
        assert (answer.mti, answer.fields["39"], answer.fields["11"]) == ("0810", "00", "000777")
        # a sign-on without 41 is still a format error: it names nobody
        sign_on = Message("0800", {"7": "1201093015", "11": "000778", "70": "001"})
        assert (await t.exchange(sign_on)).fields["39"] == "30"
        assert not [m for m in sut.host.received if m.fields.get("11") == "000777"]


async def _sign_on(t: Terminal) -> None:
    """A proven sign-on (the harness MACs it under the KEK's sign-on key)."""
    assert (await t.sign_on()).fields["39"] == "800"


async def test_sign_off_declines_purchases_until_the_next_sign_on(tmp_path: Path) -> None:
    async with started_switch(tmp_path) as sut, sut.terminal() as t:
        off = network_request("1993", NetworkFunction.SIGN_OFF, t.next_stan(), "T0000001")
        assert (await t.exchange(off)).fields["39"] == "800"
        refused = await t.exchange(t.purchase(2500))
        assert refused.fields["39"] == "120"  # not permitted to terminal: signed off
        assert not [m for m in sut.host.received if m.mti == "1200"]
        # a reversal of an earlier sale still goes: it only gives money back
        await _sign_on(t)
        assert (await t.exchange(t.purchase(2500))).fields["39"] == "000"
        # the sign-off survives a restart: the guard is not process memory only
        await t.exchange(
            network_request("1993", NetworkFunction.SIGN_OFF, t.next_stan(), "T0000001")
        )
        await sut.restart()
        async with sut.terminal() as again:
            again.tak = t.tak
            assert (await again.exchange(again.purchase(2600))).fields["39"] == "120"


async def test_sign_on_for_a_listed_terminal_missing_from_the_key_store(tmp_path: Path) -> None:
    """Listed in its group, never registered: 109 for it, and the switch serves on."""
    listed = ["T0000001", "T0000002", "T0000099"]
    async with started_switch(
        tmp_path, dialect="iso87ascii", mac=False, group_terminals=listed
    ) as sut:
        async with sut.terminal("T0000099") as ghost:
            sign_on = network_request(
                "1987", NetworkFunction.SIGN_ON, ghost.next_stan(), "T0000099"
            )
            answer = await ghost.exchange(sign_on)
            assert answer.fields["39"] == "03"
            key_change = network_request(
                "1987", NetworkFunction.KEY_CHANGE, ghost.next_stan(), "T0000099"
            )
            assert (await ghost.exchange(key_change)).fields["39"] == "03"
        async with sut.terminal("T0000002") as other:
            assert (await other.exchange(other.purchase(1200))).fields["39"] == "00"


@pytest.mark.parametrize("dialect", ["ifsf", "iso87ascii"])
async def test_terminal_reversal_names_the_acquirer_the_original_went_with(
    tmp_path: Path, dialect: str
) -> None:
    async with (
        started_switch(tmp_path, dialect=dialect, acquirer_id="") as sut,
        sut.terminal() as t,
    ):
        purchase = t.purchase(3100).with_fields({32: "98765432109"})
        assert (await t.exchange(purchase)).fields["39"] in ("000", "00")
        assert (await t.exchange(t.reversal(purchase))).fields["39"] in ("400", "00")
        with trio.fail_after(5):
            while not [m for m in sut.host.received if m.mti[1] == "4"]:
                await trio.sleep(0.02)
        (original,) = [m for m in sut.host.received if m.mti[1] == "2"]
        (reversal,) = [m for m in sut.host.received if m.mti[1] == "4"]
        assert original.fields["32"] == "98765432109"
        if dialect == "ifsf":
            named = OriginalData.decode(reversal.fields["56"])
            assert (named.stan, named.acquirer_id) == (original.fields["11"], "98765432109")
        else:
            elements = OriginalElements.decode(reversal.fields["90"])
            assert (elements.stan, elements.acquirer_id) == (original.fields["11"], "98765432109")


async def test_retransmission_after_a_crash_gets_its_outcome_never_a_second_authorisation(
    tmp_path: Path,
) -> None:
    """A row in flight at a crash is left reversal_pending; its copy is not forwarded."""
    from forecourt.switch.journal import AddEvent, Event, InsertTransaction, JournalRow

    async with started_switch(tmp_path, mac=False) as sut:
        async with sut.terminal() as t:
            purchase = t.purchase(4400)
        stan = purchase.fields["11"]
        async with open_journal(tmp_path / "journal.db", node="test-node") as journal:
            # as a kill -9 leaves it: forwarded, no answer
            row = JournalRow(
                txn_id="crashed-0001",
                node="test-node",
                terminal_id="T0000001",
                stan=stan,
                mti_class="2",
                request_mti="1200",
                received_at=1.0,
                state="forwarded",
                amount=4400,
                route="bank",
                acquirer_stan="000123",
                forwarded_at=1.0,
                masked_pan="476173******0010",
            )
            await journal.write(
                InsertTransaction(row), AddEvent(Event(row.txn_id, 1.0, "forwarded", "bank"))
            )
        await sut.restart()
        async with sut.terminal() as again:
            answer = await again.exchange(purchase)
            assert answer.fields["39"] == "911"
        assert not [m for m in sut.host.received if m.mti == "1200"]
        async with open_journal(tmp_path / "journal.db") as journal:
            rows = [r for r in await journal.list(limit=10) if r.stan == stan]
        assert [r.state for r in rows] == ["reversal_pending"]


async def test_no_pan_in_the_balance_answer(tmp_path: Path) -> None:
    async with started_switch(tmp_path) as sut, sut.terminal() as t:
        answer = await t.exchange(t.preauth(0).with_fields({3: "310000", 4: None}))
        assert answer.raw is not None
        assert TEST_PAN.encode() not in answer.raw


@pytest.mark.parametrize("dialect", ["ifsf", "iso87ascii"])
async def test_a_host_answer_with_an_empty_secondary_bitmap_is_taken(
    tmp_path: Path, dialect: str
) -> None:
    """Before, it was dropped as undecodable: the terminal got 91 and a reversal followed."""
    from forecourt.codecs.dialect import get_dialect

    from tests.switch.harness import SmallHost

    host = SmallHost(get_dialect(dialect), empty_secondary=True)
    async with started_switch(tmp_path, dialect=dialect, host=host) as sut, sut.terminal() as t:
        assert (await t.exchange(t.purchase(2200))).fields["39"] in ("000", "00")
        assert not [m for m in sut.host.received if m.mti[1] == "4"]


async def test_a_mac_lock_survives_a_restart(tmp_path: Path) -> None:
    """The lock is the journal's, not process memory: a restart does not lift it."""
    async with started_switch(tmp_path, mac_failures_before_lock=2) as sut:
        async with sut.terminal() as t:
            for _ in range(2):
                await t.send(t.purchase(100), mac=False)
                assert (await t.receive()).fields["39"] == "916"
            assert (await t.exchange(t.purchase(100))).fields["39"] == "917"
            tak = t.tak
        await sut.restart()
        async with sut.terminal() as again:
            again.tak = tak
            assert (await again.exchange(again.purchase(100))).fields["39"] == "917"
            await _sign_on(again)
            assert (await again.exchange(again.purchase(100))).fields["39"] == "000"


async def test_a_sign_off_without_a_mac_signs_nobody_off(tmp_path: Path) -> None:
    async with started_switch(tmp_path) as sut, sut.terminal() as t:
        off = network_request("1993", NetworkFunction.SIGN_OFF, t.next_stan(), "T0000001")
        await t.send(off, mac=False)
        assert (await t.receive()).fields["39"] == "916"
        assert (await t.exchange(t.purchase(1700))).fields["39"] == "000"
