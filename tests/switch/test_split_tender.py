"""Split tender, linked: the legs of a sale in tender order, each answer stating what
is still due, local refusals of a leg out of order or over-paying, the reversal of
the whole sale at each leg's own authoriser, and the totals by tender.

Fleet and consumer cards at the switch's own ledger, bank cards at an ISO 8583
acquirer simulator on real sockets (tests/switch/split_harness.py); a real SQLite
journal, and the ledger's books, read back through a second journal instance.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import trio
from forecourt.codecs.field48 import encode_field48
from forecourt.codecs.split import SplitGroup, with_split_group
from forecourt.switch import journal_cli
from forecourt.switch.cli import _ArgumentParser
from forecourt.switch.journal import open_journal

from tests.switch.split_harness import (
    BANK_PAN,
    CONSUMER_BALANCE,
    FLEET_BALANCE,
    SLOW,
    T1,
    SplitSwitch,
    amount_due,
    approved,
    consumer_pan,
    fleet_pan,
    split_switch,
)


async def test_legs_in_tender_order_each_answer_states_the_amount_due(tmp_path: Path) -> None:
    group = SplitGroup("000000001", 20000)
    async with split_switch(tmp_path) as sw, sw.terminal() as term:
        fleet = await sw.leg(term, fleet_pan(1), 20000, group)
        consumer = await sw.leg(term, consumer_pan(1), 5000, group)
        bank = await sw.leg(term, BANK_PAN, 2000, group)
        assert (fleet.fields["39"], approved(fleet), amount_due(fleet)) == ("002", 15000, 5000)
        assert (consumer.fields["39"], approved(consumer), amount_due(consumer)) == (
            "002",
            3000,
            2000,
        )
        assert (bank.fields["39"], approved(bank), amount_due(bank)) == ("000", 2000, 0)
        # each leg at its own authoriser: two taken by the ledger, one at the bank
        assert await sw.postings(fleet_pan(1)) == [("hold", 15000), ("capture", 15000)]
        assert await sw.postings(consumer_pan(1)) == [("hold", 3000), ("capture", 3000)]
        assert (await sw.balance(fleet_pan(1)), await sw.balance(consumer_pan(1))) == (0, 0)
        assert sw.purchases_at(sw.bank) == 1
        async with open_journal(sw.config, node="reader") as journal:
            state = await journal.split_group(T1, "000000001")
            legs = await journal.split_legs(T1, "000000001")
        assert state is not None and (state.approved, state.claimed, state.due) == (20000, 20000, 0)
        assert [leg.tender for leg in legs] == ["fleet", "consumer", "bank"]


async def test_a_1987_terminal_carries_the_group_in_field_62(tmp_path: Path) -> None:
    group = SplitGroup("000000011", 20000)
    async with split_switch(tmp_path, dialect="iso87ascii") as sw, sw.terminal() as term:
        fleet = await sw.leg(term, fleet_pan(11), 20000, group)
        bank = await sw.leg(term, BANK_PAN, 5000, group)
        over = await sw.leg(term, BANK_PAN, 1, group)
    assert (fleet.mti, fleet.fields["39"], amount_due(fleet)) == ("0210", "10", 5000)
    assert (bank.fields["39"], amount_due(bank)) == ("00", 0)
    assert (over.fields["39"], amount_due(over)) == ("13", 0)
    assert "62" not in fleet.fields  # answers never echo the group


async def test_a_malformed_group_is_904_and_goes_nowhere(tmp_path: Path) -> None:
    async with split_switch(tmp_path) as sw, sw.terminal() as term:
        bad = term.purchase(1000).with_fields({48: encode_field48({7: "000000012"})})
        answer = await term.exchange(bad)
        metrics = await _metrics(sw)
    assert answer.fields["39"] == "904" and sw.purchases_at(sw.bank) == 0
    assert 'forecourt_malformed_frames_total{reason="split_group",side="terminal"} 1.0' in metrics


async def _metrics(sw: SplitSwitch) -> str:
    from tests.switch.test_metrics import get

    assert sw.running.metrics_port is not None
    status, _, body = await get(sw.running.metrics_port, "/metrics")
    assert status == 200
    return body.decode()


async def test_a_refund_carrying_a_group_is_no_leg(tmp_path: Path) -> None:
    group = SplitGroup("000000014", 1000)
    async with split_switch(tmp_path) as sw, sw.terminal() as term:
        refund = term.purchase(5000, pan=BANK_PAN).with_fields({3: "200000"})
        answer = await term.exchange(with_split_group(refund, group, term.dialect.family))
        leg = await sw.leg(term, BANK_PAN, 1000, group)
    assert answer.fields["39"] == "000" and amount_due(answer) is None
    assert leg.fields["39"] == "000" and amount_due(leg) == 0


async def test_a_plain_purchase_carries_no_amount_due(tmp_path: Path) -> None:
    async with split_switch(tmp_path) as sw, sw.terminal() as term:
        answer = await term.exchange(term.purchase(1000))
    assert answer.fields["39"] == "000" and amount_due(answer) is None


async def test_a_leg_out_of_order_is_refused_without_asking_its_authoriser(
    tmp_path: Path,
) -> None:
    group = SplitGroup("000000002", 5000)
    async with split_switch(tmp_path) as sw, sw.terminal() as term:
        bank = await sw.leg(term, BANK_PAN, 1000, group)
        assert bank.fields["39"] == "000" and amount_due(bank) == 4000
        fleet = await sw.leg(term, fleet_pan(2), 4000, group)
        consumer = await sw.leg(term, consumer_pan(2), 1000, group)
        assert fleet.fields["39"] == "902" and amount_due(fleet) == 4000
        assert consumer.fields["39"] == "902" and amount_due(consumer) == 4000
        # refused by the split rules: the ledger was never asked
        assert await sw.postings(fleet_pan(2)) == await sw.postings(consumer_pan(2)) == []
        assert await sw.balance(fleet_pan(2)) == FLEET_BALANCE
        assert await sw.balance(consumer_pan(2)) == CONSUMER_BALANCE
        # a bank card after the bank leg keeps the order: taken
        again = await sw.leg(term, BANK_PAN, 4000, group)
        assert again.fields["39"] == "000" and amount_due(again) == 0
        async with open_journal(sw.config, node="reader") as journal:
            legs = await journal.split_legs(T1, "000000002")
    flags = [leg.flags for leg in legs]
    assert flags == [(), ("split_out_of_order",), ("split_out_of_order",), ()]


async def test_an_over_paying_leg_is_refused_without_asking_its_authoriser(
    tmp_path: Path,
) -> None:
    group = SplitGroup("000000003", 5000)
    async with split_switch(tmp_path) as sw, sw.terminal() as term:
        fleet = await sw.leg(term, fleet_pan(3), 3000, group)
        assert fleet.fields["39"] == "000" and amount_due(fleet) == 2000
        over = await sw.leg(term, BANK_PAN, 2001, group)
        assert over.fields["39"] == "110" and amount_due(over) == 2000
        assert sw.purchases_at(sw.bank) == 0
        whole = SplitGroup("000000004", 1000)
        first = await sw.leg(term, BANK_PAN, 1001, whole)  # more than the sale itself
        assert first.fields["39"] == "110" and amount_due(first) == 1000
        rest = await sw.leg(term, BANK_PAN, 2000, group)
        assert rest.fields["39"] == "000" and amount_due(rest) == 0
        assert sw.purchases_at(sw.bank) == 1


async def test_a_leg_naming_another_total_is_refused(tmp_path: Path) -> None:
    async with split_switch(tmp_path) as sw, sw.terminal() as term:
        await sw.leg(term, fleet_pan(4), 1000, SplitGroup("000000005", 5000))
        other = await sw.leg(term, BANK_PAN, 1000, SplitGroup("000000005", 6000))
    assert other.fields["39"] == "902" and sw.purchases_at(sw.bank) == 0


async def _wait_for(condition: object, timeout: float = 5.0) -> None:
    assert callable(condition)
    with trio.fail_after(timeout):
        while not condition():
            await trio.sleep(0.02)


async def _paid_sale(sw: SplitSwitch, term: object, group: SplitGroup, n: int) -> None:
    from tests.switch.harness import Terminal

    assert isinstance(term, Terminal)
    assert amount_due(await sw.leg(term, fleet_pan(n), 20000, group)) == 5000
    assert amount_due(await sw.leg(term, consumer_pan(n), 5000, group)) == 2000
    assert amount_due(await sw.leg(term, BANK_PAN, 2000, group)) == 0


async def test_the_whole_sale_reversal_reverses_every_leg_at_its_own_authoriser(
    tmp_path: Path,
) -> None:
    """The bank leg's reversal goes upstream; the ledger legs' are delivered by SAF
    to the ledger, which gives each card its money back, once."""
    group = SplitGroup("000000006", 20000)
    async with split_switch(tmp_path) as sw, sw.terminal() as term:
        await _paid_sale(sw, term, group, 6)
        last = with_split_group(term.purchase(2000, pan=BANK_PAN), group, term.dialect.family)
        reversal = with_split_group(term.reversal(last), group, term.dialect.family)
        answer = await term.exchange(reversal)
        assert (answer.mti, answer.fields["39"]) == ("1430", "400")
        async with open_journal(sw.config, node="reader") as journal:
            # durable with the answer: every leg's reversal is due in SAF, none parked
            legs = await journal.split_legs(T1, group.group_id)
            items = await journal.saf_entries_of([leg.txn_id for leg in legs])
            assert len(items) == 3
            assert all(i.state != "pending" or i.next_attempt_at <= time.time() for i in items)
            # SAF delivers each at the authoriser that approved it: the bank's
            # upstream, the ledger's locally
            await _wait_for(lambda: sw.reversals_at(sw.bank) == 1)
            await _balances_become(sw, 6, FLEET_BALANCE, CONSUMER_BALANCE)
            for _ in range(100):
                legs = await journal.split_legs(T1, group.group_id)
                if all(leg.state == "reversed" for leg in legs):
                    break
                await trio.sleep(0.05)
            assert [leg.state for leg in legs] == ["reversed"] * 3
            state = await journal.split_group(T1, group.group_id)
            # each leg's reversal went by SAF over its own link, and was delivered
            by_txn = {i.txn_id: i for i in await journal.saf_entries_of([x.txn_id for x in legs])}
            assert [(by_txn[x.txn_id].link, by_txn[x.txn_id].mti[1:]) for x in legs] == [
                ("ledger", "420"),
                ("ledger", "420"),
                ("bank", "420"),
            ]
            assert {i.state for i in by_txn.values()} == {"done"}, by_txn
        assert state is not None and state.reversed and state.claimed == 0
        # a reversed sale takes no further leg, and a second reversal is answered alike
        again = await term.exchange(
            with_split_group(term.reversal(last), group, term.dialect.family)
        )
        assert again.fields["39"] == "400"
        late = await sw.leg(term, BANK_PAN, 1000, group)
        assert late.fields["39"] == "902"
        await trio.sleep(0.5)
        assert sw.reversals_at(sw.bank) == 1
        # each ledger leg reversed once: what it captured, given back
        assert await sw.postings(fleet_pan(6)) == [
            ("hold", 15000),
            ("capture", 15000),
            ("reversal", 15000),
        ]
        assert await sw.postings(consumer_pan(6)) == [
            ("hold", 3000),
            ("capture", 3000),
            ("reversal", 3000),
        ]
        assert await sw.balance(fleet_pan(6)) == FLEET_BALANCE
        assert await sw.balance(consumer_pan(6)) == CONSUMER_BALANCE


async def _balances_become(sw: SplitSwitch, n: int, fleet: int, consumer: int) -> None:
    with trio.fail_after(5):
        while (await sw.balance(fleet_pan(n)), await sw.balance(consumer_pan(n))) != (
            fleet,
            consumer,
        ):
            await trio.sleep(0.05)


async def test_a_sale_whose_legs_can_no_longer_all_be_reversed_is_refused_whole(
    tmp_path: Path,
) -> None:
    """After the shift closed, the legs' parked reversals are gone: reversing only
    some legs would leave the sale half paid, so none is (902, nothing sent)."""
    group = SplitGroup("000000013", 20000)
    async with split_switch(tmp_path) as sw, sw.terminal() as term:
        await term.sign_on()
        await _paid_sale(sw, term, group, 13)
        assert (await term.exchange(term.shift_close((3, 20000)))).fields["39"] == "500"
        last = with_split_group(term.purchase(2000, pan=BANK_PAN), group, term.dialect.family)
        whole = with_split_group(term.reversal(last), group, term.dialect.family)
        answer = await term.exchange(whole)
        await trio.sleep(0.5)
        async with open_journal(sw.config, node="reader") as journal:
            legs = await journal.split_legs(T1, group.group_id)
        fleet_books = await sw.postings(fleet_pan(13))
        consumer_books = await sw.postings(consumer_pan(13))
    assert answer.fields["39"] == "902"
    assert sw.reversals_at(sw.bank) == 0
    # nothing given back at the ledger either
    assert fleet_books == [("hold", 15000), ("capture", 15000)]
    assert consumer_books == [("hold", 3000), ("capture", 3000)]
    assert [leg.state for leg in legs] == ["approved"] * 3


async def test_a_reversed_leg_frees_its_part_of_the_sale(tmp_path: Path) -> None:
    group = SplitGroup("000000007", 5000)
    async with split_switch(tmp_path) as sw, sw.terminal() as term:
        leg = with_split_group(term.purchase(5000, pan=BANK_PAN), group, term.dialect.family)
        assert amount_due(await term.exchange(leg)) == 0
        # one leg's reversal carries no group (with the group it reverses the whole sale)
        single = term.reversal(leg).with_fields({48: None})
        assert (await term.exchange(single)).fields["39"] == "400"
        again = await sw.leg(term, BANK_PAN, 5000, group)
    assert again.fields["39"] == "000" and amount_due(again) == 0


async def test_a_leg_whose_terminal_went_before_the_answer_frees_its_part(
    tmp_path: Path,
) -> None:
    group = SplitGroup("000000010", 2000)
    async with split_switch(tmp_path) as sw:
        async with sw.terminal() as term:
            leg = with_split_group(term.purchase(SLOW, pan=BANK_PAN), group, term.dialect.family)
            await term.send(leg)
            await trio.sleep(0.3)  # gone before the bank's answer
        await _wait_for(lambda: sw.reversals_at(sw.bank) == 1)
        async with open_journal(sw.config, node="reader") as journal:
            state = await journal.split_group(T1, group.group_id)
        assert state is not None and (state.claimed, state.approved) == (0, 0)
        async with sw.terminal() as term:
            whole = await sw.leg(term, BANK_PAN, 2000, group)
    assert whole.fields["39"] == "000" and amount_due(whole) == 0


async def test_the_whole_sale_reversal_of_an_unknown_sale_is_914(tmp_path: Path) -> None:
    async with split_switch(tmp_path) as sw, sw.terminal() as term:
        sale = term.purchase(1000)
        reversal = with_split_group(
            term.reversal(sale), SplitGroup("000000099", 1000), term.dialect.family
        )
        answer = await term.exchange(reversal)
    assert answer.fields["39"] == "914"


async def test_shift_totals_break_down_by_tender(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    group = SplitGroup("000000008", 20000)
    async with split_switch(tmp_path) as sw, sw.terminal() as term:
        await term.sign_on()  # opens the terminal's shift
        await _paid_sale(sw, term, group, 8)
        async with open_journal(sw.config, node="reader") as journal:
            shift_id = await journal.open_shift(T1)
            assert shift_id is not None
            totals = await journal.totals(T1, shift_id)
        by_tender = {(x.tender, x.category): (x.count, x.amount) for x in totals.lines}
        assert by_tender == {
            ("fleet", "debit"): (1, 15000),
            ("consumer", "debit"): (1, 3000),
            ("bank", "debit"): (1, 2000),
        }
        close = await term.exchange(term.shift_close((3, 20000)))
        assert close.fields["39"] == "500"
        async with open_journal(sw.config, node="reader") as journal:
            shift = await journal.shift(T1, shift_id)
    assert shift is not None and shift.totals is not None
    assert shift.totals["by_tender"] == {
        "fleet": {"debit": [1, 15000]},
        "consumer": {"debit": [1, 3000]},
        "bank": {"debit": [1, 2000]},
    }
    parser = _ArgumentParser(prog="forecourt")
    journal_cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(
        ["journal", "totals", "--terminal", T1, "--shift", shift_id, "--data-dir", str(tmp_path)]
    )
    assert args.func(args) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if "debit" in line]
    assert any("fleet" in r and "15000" in r for r in rows)
    assert any("consumer" in r and "3000" in r for r in rows)
    assert any("bank" in r and "2000" in r for r in rows)


async def test_a_leg_in_flight_when_the_switch_stopped_frees_its_claim_at_start(
    tmp_path: Path,
) -> None:
    from forecourt.switch.journal import ClaimSplitLeg, JournalRow, new_txn_id

    group = SplitGroup("000000015", 5000)
    async with open_journal(tmp_path / "journal.db", node="split-node") as journal:
        await journal.write(ClaimSplitLeg(T1, group.group_id, 5000, 5000, 2, time.time()))
        leg = JournalRow(
            txn_id=new_txn_id(),
            node="split-node",
            terminal_id=T1,
            stan="000777",
            mti_class="2",
            request_mti="1200",
            received_at=time.time() - 5,
            state="forwarded",
            amount=5000,
            masked_pan="476173******0010",
            split_group=group.group_id,
            tender="bank",
            forwarded_at=time.time() - 5,
        )
        await journal.record_received(leg)
    async with split_switch(tmp_path) as sw, sw.terminal() as term:  # recovery runs first
        again = await sw.leg(term, BANK_PAN, 5000, group)
        async with open_journal(sw.config, node="reader") as journal:
            recovered = await journal.get(leg.txn_id)
    assert recovered is not None and recovered.state == "reversal_pending"
    assert again.fields["39"] == "000" and amount_due(again) == 0
