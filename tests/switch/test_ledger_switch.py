"""The ledger as the switch's authoriser, over real TCP, on a real SQLite journal:
partial debit with the amount due in field 54, the pre-authorisation hold and its
completion for less, the end of the window, a reversal once, declines by card status,
product and limit, the odometer flag in the journal, and a 1987 terminal."""

from __future__ import annotations

import sqlite3
from decimal import Decimal
from pathlib import Path

import trio
from forecourt.codecs.amounts import AMOUNT_DUE, AVAILABLE_BALANCE, decode_field54
from forecourt.codecs.customer_data import CustomerData
from forecourt.codecs.message import Message
from forecourt.codecs.product import ProductData, ProductItem
from forecourt.switch.demo_ledger import SeedAccount, SeedCard
from forecourt.switch.ledger import Limits

from tests.switch.harness import Terminal
from tests.switch.ledger_switch import ledger_switch

FLEET = "7077001234567890"
DIESEL_ONLY = "7077002345678901"
BLOCKED = "7077003456789012"
LOST = "7077004567890123"
CONSUMER = "7080001234567890"
LIMITED = "7078001234567890"
# POS data code: position 8 cardholder authentication PIN (1), 9 by the ICC (1)
PIN_BY_ICC = "511101511344"

ACCOUNTS = (
    SeedAccount("F1", "fleet", 15000, (SeedCard(FLEET, "vehicle", "AB12CDE"),)),
    SeedAccount("F2", "fleet", 50000, (
        SeedCard(DIESEL_ONLY, "vehicle", "XY99ZZZ", products=("DIESEL",)),
        SeedCard(BLOCKED, "driver", "D1", status="blocked"),
        SeedCard(LOST, "driver", "D2", status="lost"),
        SeedCard(LIMITED, "driver", "D3", limits={
            "signature": Limits(daily_amount=5000), "pin": Limits(daily_amount=20000)}),
    )),
    SeedAccount("C1", "consumer", 3000, (SeedCard(CONSUMER),)),
)  # fmt: skip


def fuel(code: str, litres: str, amount: int) -> str:
    item = ProductItem(code, "L", Decimal(litres), Decimal("1.659"), amount)
    return ProductData("S", (item,)).encode()


def inquiry(t: Terminal, pan: str) -> Message:
    return t.purchase(0, pan=pan).with_fields({3: "310000"}, mti="1100")


async def balance(t: Terminal, pan: str) -> int:
    answer = await t.exchange(inquiry(t, pan))
    assert answer.fields["39"] == "000", answer.fields
    (amount,) = decode_field54(answer.fields["54"])
    assert amount.amount_type == AVAILABLE_BALANCE
    return amount.amount


async def balance_becomes(t: Terminal, pan: str, expected: int, within_s: float = 5.0) -> None:
    with trio.fail_after(within_s):
        while await balance(t, pan) != expected:
            await trio.sleep(0.05)


async def test_partial_debit_states_the_amount_due(tmp_path: Path) -> None:
    async with ledger_switch(tmp_path, ACCOUNTS) as sw, sw.terminal() as t:
        answer = await t.exchange(t.purchase(20000, pan=FLEET))
        assert answer.fields["39"] == "002"
        assert answer.fields["4"] == "000000015000"
        amounts = {a.amount_type: a.amount for a in decode_field54(answer.fields["54"])}
        assert amounts == {AVAILABLE_BALANCE: 0, AMOUNT_DUE: 5000}
        assert "2" not in answer.fields and "38" in answer.fields
        declined = await t.exchange(t.purchase(100, pan=FLEET))
        assert declined.fields["39"] == "116"
    rows = (
        sqlite3.connect(tmp_path / "journal.db")
        .execute(
            "SELECT state, approved_amount, action_code FROM transactions WHERE route = 'ledger' "
            "ORDER BY received_at"
        )
        .fetchall()
    )
    assert rows == [("approved", 15000, "002"), ("declined", None, "116")]


async def test_preauth_hold_and_completion_for_less(tmp_path: Path) -> None:
    async with ledger_switch(tmp_path, ACCOUNTS) as sw, sw.terminal() as t:
        preauth = t.preauth(10000).with_fields({2: FLEET})
        assert (await t.exchange(preauth)).fields["39"] == "000"
        assert await balance(t, FLEET) == 5000  # held
        completion = t.completion(preauth, 6250)
        assert (await t.exchange(completion)).fields["39"] == "000"
        await balance_becomes(t, FLEET, 15000 - 6250)  # the 3750 difference is released


async def test_preauth_released_when_its_window_ends(tmp_path: Path) -> None:
    async with (
        ledger_switch(tmp_path, ACCOUNTS, preauth_window_s=1.0, release_interval_s=0.1) as sw,
        sw.terminal() as t,
    ):
        preauth = t.preauth(9000).with_fields({2: FLEET})
        assert (await t.exchange(preauth)).fields["39"] == "000"
        assert await balance(t, FLEET) == 6000
        await balance_becomes(t, FLEET, 15000, within_s=5.0)


async def test_reversal_restores_once(tmp_path: Path) -> None:
    async with ledger_switch(tmp_path, ACCOUNTS) as sw, sw.terminal() as t:
        purchase = t.purchase(4000, pan=FLEET)
        assert (await t.exchange(purchase)).fields["39"] == "000"
        reversal = t.reversal(purchase)
        assert (await t.exchange(reversal)).fields["39"] == "400"
        repeat = reversal.with_fields({}, mti="1421")
        assert (await t.exchange(repeat)).fields["39"] == "400"
        await balance_becomes(t, FLEET, 15000)
        await trio.sleep(0.5)  # every SAF delivery done: still once
        assert await balance(t, FLEET) == 15000


async def test_declines_by_card_product_and_limit(tmp_path: Path) -> None:
    async with ledger_switch(tmp_path, ACCOUNTS) as sw, sw.terminal() as t:

        async def code(pan: str, amount: int, **extra: str) -> str:
            updates: dict[int, str | None] = {int(k[1:]): v for k, v in extra.items()}
            request = t.purchase(amount, pan=pan).with_fields(updates)
            return (await t.exchange(request)).fields["39"]

        assert await code(BLOCKED, 100) == "104"
        assert await code(LOST, 100) == "208"
        assert await code("7077009999999999", 100) == "118"
        assert await code(DIESEL_ONLY, 3000, f63=fuel("UNL95", "18.08", 3000)) == "119"
        assert await code(DIESEL_ONLY, 3000, f63=fuel("DIESEL", "18.08", 3000)) == "000"
        assert await code(LIMITED, 4000) == "000"
        assert await code(LIMITED, 2000) == "121"  # signature: 5000 a day
        assert await code(LIMITED, 2000, f22=PIN_BY_ICC) == "000"  # PIN verified: 20000
        assert await code(CONSUMER, 1000) == "000"


async def test_odometer_backwards_is_flagged_in_the_journal(tmp_path: Path) -> None:
    async with ledger_switch(tmp_path, ACCOUNTS) as sw, sw.terminal() as t:
        for km in (120500, 120100):
            data = CustomerData(driver="D7", vehicle="AB12CDE", odometer=km).field48()
            answer = await t.exchange(t.purchase(500, pan=FLEET).with_fields({48: data}))
            assert answer.fields["39"] == "000"
    db = sqlite3.connect(tmp_path / "journal.db")
    flags = [f for (f,) in db.execute("SELECT flags FROM transactions ORDER BY received_at")]
    assert flags == ["", "odometer_backwards"]
    recorded = db.execute("SELECT driver, vehicle, odometer, flags FROM ledger_txns").fetchall()
    assert ("D7", "AB12CDE", 120100, "odometer_backwards") in recorded


async def test_1987_terminal_balance_inquiry(tmp_path: Path) -> None:
    async with ledger_switch(tmp_path, ACCOUNTS, dialect="iso87ascii") as sw, sw.terminal() as t:
        request = t.purchase(0, pan=FLEET).with_fields({3: "310000"}, mti="0100")
        answer = await t.exchange(request)
        assert answer.mti == "0110" and answer.fields["39"] == "00"
        assert answer.fields["54"] == "0002978C000000015000"
        partial = await t.exchange(t.purchase(20000, pan=FLEET))
        assert partial.fields["39"] == "10" and partial.fields["4"] == "000000015000"


async def test_partial_reversal_restores_down_to_the_final_amount(tmp_path: Path) -> None:
    async with ledger_switch(tmp_path, ACCOUNTS) as sw, sw.terminal() as t:
        purchase = t.purchase(5000, pan=FLEET)
        assert (await t.exchange(purchase)).fields["39"] == "000"
        assert (await t.exchange(t.reversal(purchase, final_amount=2000))).fields["39"] == "400"
        await balance_becomes(t, FLEET, 15000 - 2000)
