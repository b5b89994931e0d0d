"""The wallet authoriser's pool and the simulator's other promises, over real HTTPS.

Back-pressure (the in-flight cap answers 912 at once, nothing queued), the
duplicate order rule, the daily bill file on disk, and the load generator's
wallet sales through the switch.
"""

from __future__ import annotations

import time
from pathlib import Path

import trio
from forecourt.simulators.load import LoadOptions, MixEntry, run_load
from forecourt.simulators.wire import wire_format

from tests.switch.wallet_rig import (
    APPROVE,
    CODE,
    NUMBER_TAKEN,
    USER_PAYS,
    WRONG_AMOUNT,
    wallet_sale,
    wallet_switch,
)


async def test_the_in_flight_cap_answers_912_at_once(tmp_path: Path) -> None:
    async with wallet_switch(tmp_path, max_in_flight=1) as rig:
        async with rig.terminal() as t, trio.open_nursery() as nursery:
            slow = wallet_sale(t, USER_PAYS)
            await t.send(slow)
            await trio.sleep(0.2)  # the first sale is waiting for the customer
            started = trio.current_time()
            busy = await t.exchange(wallet_sale(t, APPROVE))
            assert busy.fields["39"] == "912"
            assert trio.current_time() - started < 0.3  # refused, not queued
            first = await t.receive(timeout=5)
            assert first.fields["11"] == slow.fields["11"] and first.fields["39"] == "000"
            nursery.cancel_scope.cancel()
        assert len(rig.provider.books.orders) == 1  # the refused one never left


async def test_a_duplicate_order_number_is_declined_913(tmp_path: Path) -> None:
    async with wallet_switch(tmp_path) as rig, rig.terminal() as t:
        sale = wallet_sale(t, NUMBER_TAKEN)
        assert (await t.exchange(sale)).fields["39"] == "913"
        assert rig.row("T0000001", sale.fields["11"])["state"] == "declined"
        # a decline cancels the parked reversal: the provider is not asked to cancel
        await trio.sleep(0.5)
        assert not [r for r in rig.provider.received if r.path == "/v1/cancel"]


async def test_the_bill_file_lists_what_was_settled(tmp_path: Path) -> None:
    async with wallet_switch(tmp_path) as rig, rig.terminal() as t:
        sale = wallet_sale(t, APPROVE)
        assert (await t.exchange(sale)).fields["39"] == "000"
        assert (await t.exchange(t.reversal(sale))).fields["39"] == "400"
        await rig.settled("T0000001", sale.fields["11"], "reversed")
        order_no = f"FC{rig.row('T0000001', sale.fields['11'])['txn_id']}"
    bill = tmp_path / f"wallet-bill-{time.strftime('%Y%m%d', time.gmtime())}.csv"
    lines = bill.read_text().splitlines()
    assert lines[0].startswith("settled_at,kind,order_no")
    kinds = [(line.split(",")[1], line.split(",")[5]) for line in lines[1:] if order_no in line]
    assert kinds == [("PAY", str(APPROVE)), ("REVERSAL", str(-APPROVE))]
    assert CODE not in bill.read_text()


async def test_the_load_generator_sends_wallet_sales(tmp_path: Path) -> None:
    async with wallet_switch(tmp_path) as rig:
        options = LoadOptions(
            host="127.0.0.1",
            port=rig.running.ports["pos"],
            wire=wire_format("ifsf"),
            terminals=1,
            duration_s=1.0,
            concurrency=2,
            terminal_prefix="T",
            mix=(MixEntry(payment_codes=(CODE,), amount_min=APPROVE, amount_max=APPROVE),),
            macs={"T0000001": rig.terminal_keys["T0000001"].mac.generate},
        )
        result = await run_load(options)
        summary = result.as_dict()
        assert summary["answered"] > 0 and summary["by_action_code"] == {"000": summary["answered"]}
        assert len(rig.provider.books.orders) == summary["answered"]


async def test_a_payment_for_another_amount_is_undone(tmp_path: Path) -> None:
    async with wallet_switch(tmp_path) as rig, rig.terminal() as t:
        sale = wallet_sale(t, WRONG_AMOUNT)
        assert (await t.exchange(sale)).fields["39"] == "911"
        await rig.settled("T0000001", sale.fields["11"], "reversed")
        (order,) = rig.provider.books.orders.values()
        assert order.state == "CANCELLED"
