"""The ledger's operations on a real journal (a SQLite file, and PostgreSQL): partial
debits, holds, completions for less, expiry, reversals once, limits, products, the
odometer, card status, and the double entry adding up."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest
from forecourt.switch.journal import Journal
from forecourt.switch.ledger import (
    LedgerCardStatus,
    LedgerComplete,
    LedgerExpire,
    LedgerInquire,
    LedgerReverse,
    LedgerSetLimits,
    Limits,
    Prompted,
    SaleFacts,
    Settled,
)

from tests.switch.ledger_fixtures import FLEET_PAN, available, buy, ledger_journal, open_fleet, ref

Target = Path | str


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Target:
    if request.param == "sqlite":
        return tmp_path / "j.db"
    dsn: str = request.getfixturevalue("postgres_db")
    return dsn


async def _postings_balance(journal: Journal, account: str) -> int:
    """The available book from the postings alone (credits - debits)."""
    from forecourt.switch.ledger import LedgerStatement

    (rows,) = await journal.write(LedgerStatement(account, 0.0, time.time() + 1))
    assert isinstance(rows, list)
    total = 0
    for _, _, _, debit, credit, amount, *_ in rows:
        total += int(amount) * ((credit == "available") - (debit == "available"))
    return total


async def test_partial_debit_takes_what_there_is(target: Target) -> None:
    async with ledger_journal(target) as j:
        await open_fleet(j, "F1", 15000, FLEET_PAN)
        d = await buy(j, FLEET_PAN, 20000, "T1|000001|261201100000")
        assert (d.code, d.approved, d.requested, d.available) == ("partial", 15000, 20000, 0)
        assert await available(j, "F1") == (0, 0, 15000)
        nothing = await buy(j, FLEET_PAN, 100, "T1|000002|261201100001")
        assert nothing.code == "insufficient_funds" and nothing.approved == 0
        assert await _postings_balance(j, "F1") == 0


async def test_same_reference_is_decided_once(target: Target) -> None:
    async with ledger_journal(target) as j:
        await open_fleet(j, "F1", 10000, FLEET_PAN)
        first = await buy(j, FLEET_PAN, 4000, "T1|000001|261201100000")
        again = await buy(j, FLEET_PAN, 4000, "T1|000001|261201100000")
        assert first.code == again.code == "approved"
        assert await available(j, "F1") == (6000, 0, 4000)


async def test_completion_for_less_releases_the_difference_at_once(target: Target) -> None:
    async with ledger_journal(target) as j:
        await open_fleet(j, "F1", 15000, FLEET_PAN)
        pre = "T1|000001|261201100000"
        d = await buy(j, FLEET_PAN, 10000, pre, kind="preauth", expires_at=time.time() + 60)
        assert d.code == "approved" and await available(j, "F1") == (5000, 10000, 0)
        (s,) = await j.write(
            LedgerComplete("T1|000002|261201100500", pre, ref(FLEET_PAN), 6250, SaleFacts(), 1.0)
        )
        assert s == Settled("approved", captured=6250, restored=3750)
        assert await available(j, "F1") == (8750, 0, 6250)
        # the advice again (SAF repeat), and a second advice: nothing moves
        (again,) = await j.write(
            LedgerComplete("T1|000002|261201100500", pre, ref(FLEET_PAN), 6250, SaleFacts(), 1.0)
        )
        assert isinstance(again, Settled) and again.code == "already"
        assert await available(j, "F1") == (8750, 0, 6250)
        assert await _postings_balance(j, "F1") == 8750


async def test_preauth_without_completion_is_released_when_its_window_ends(
    target: Target,
) -> None:
    async with ledger_journal(target) as j:
        await open_fleet(j, "F1", 15000, FLEET_PAN)
        now = time.time()
        await buy(j, FLEET_PAN, 9000, "T1|000001|a", kind="preauth", expires_at=now + 100)
        await buy(j, FLEET_PAN, 1000, "T1|000002|b", kind="preauth", expires_at=now + 5000)
        (released,) = await j.write(LedgerExpire(now + 10))
        assert released == 0
        (released,) = await j.write(LedgerExpire(now + 200))
        assert released == 1
        assert await available(j, "F1") == (14000, 1000, 0)
        # a completion after the release takes from what is available, never more
        (late,) = await j.write(
            LedgerComplete("T1|000003|c", "T1|000001|a", ref(FLEET_PAN), 20000, SaleFacts(), now)
        )
        assert isinstance(late, Settled) and late.captured == 14000
        assert "completion_short" in late.flags
        assert await available(j, "F1") == (0, 1000, 14000)


async def test_reversal_restores_exactly_once(target: Target) -> None:
    async with ledger_journal(target) as j:
        await open_fleet(j, "F1", 15000, FLEET_PAN)
        await buy(j, FLEET_PAN, 4000, "T1|000001|a")
        await buy(j, FLEET_PAN, 3000, "T1|000002|b", kind="preauth", expires_at=time.time() + 60)
        assert await available(j, "F1") == (8000, 3000, 4000)
        for _ in range(3):  # the terminal's, the switch's, a SAF repeat
            await j.write(LedgerReverse("T1|000001|a", time.time()))
            await j.write(LedgerReverse("T1|000002|b", time.time()))
        assert await available(j, "F1") == (15000, 0, 0)
        # a reversal of something never seen leaves a tombstone: the late original is refused
        (s,) = await j.write(LedgerReverse("T1|000009|z", time.time()))
        assert isinstance(s, Settled) and s.code == "original_not_found"
        late = await buy(j, FLEET_PAN, 500, "T1|000009|z")
        assert late.code == "reversed_before" and await available(j, "F1") == (15000, 0, 0)


async def test_partial_reversal_restores_down_to_the_final_amount(target: Target) -> None:
    async with ledger_journal(target) as j:
        await open_fleet(j, "F1", 15000, FLEET_PAN)
        await buy(j, FLEET_PAN, 5000, "T1|000001|a")
        for _ in range(2):
            await j.write(LedgerReverse("T1|000001|a", time.time(), to_amount=2000))
        assert await available(j, "F1") == (13000, 0, 2000)


async def test_card_status_declines(target: Target) -> None:
    async with ledger_journal(target) as j:
        await open_fleet(j, "F1", 15000, FLEET_PAN, "7077002222222222")
        await j.write(LedgerCardStatus(ref(FLEET_PAN), "blocked", time.time(), "ops"))
        await j.write(LedgerCardStatus(ref("7077002222222222"), "lost", time.time(), "ops"))
        assert (await buy(j, FLEET_PAN, 100, "r1")).code == "card_blocked"
        assert (await buy(j, "7077002222222222", 100, "r2")).code == "card_lost"
        assert (await buy(j, "7077009999999999", 100, "r3")).code == "unknown_card"
        (inquiry,) = await j.write(LedgerInquire(ref(FLEET_PAN)))
        assert inquiry.code == "card_blocked"
        await j.write(LedgerCardStatus(ref(FLEET_PAN), "active", time.time(), "ops"))
        assert (await buy(j, FLEET_PAN, 100, "r4")).code == "approved"
        assert await available(j, "F1") == (14900, 0, 100)


async def test_products_restricted_card(target: Target) -> None:
    async with ledger_journal(target) as j:
        await open_fleet(j, "F1", 15000, FLEET_PAN, products=("DIESEL",))
        petrol = SaleFacts(products=("UNL95",), volume_ml=20000)
        diesel = SaleFacts(products=("DIESEL",), volume_ml=20000)
        assert (await buy(j, FLEET_PAN, 3000, "r1", facts=petrol)).code == "product_restricted"
        assert (await buy(j, FLEET_PAN, 3000, "r2")).code == "product_restricted"  # says nothing
        assert (await buy(j, FLEET_PAN, 3000, "r3", facts=diesel)).code == "approved"
        # a pre-authorisation is made before fuelling: it cannot name a product
        pre = await buy(j, FLEET_PAN, 3000, "r4", kind="preauth", expires_at=time.time() + 9)
        assert pre.code == "approved"


async def test_limits_by_level_take_effect_at_once(target: Target) -> None:
    async with ledger_journal(target) as j:
        await open_fleet(j, "F1", 100000, FLEET_PAN)
        pin = SaleFacts(level="pin", volume_ml=10000)
        signature = SaleFacts(level="signature", volume_ml=10000)
        await j.write(
            LedgerSetLimits(ref(FLEET_PAN), "signature", Limits(daily_amount=5000), None, 0, "o")
        )
        await j.write(
            LedgerSetLimits(ref(FLEET_PAN), "pin", Limits(daily_volume=25000), None, 0, "o")
        )
        assert (await buy(j, FLEET_PAN, 4000, "r1", facts=signature)).code == "approved"
        assert (await buy(j, FLEET_PAN, 2000, "r2", facts=signature)).code == "limit_exceeded"
        assert (await buy(j, FLEET_PAN, 2000, "r3", facts=pin)).code == "approved"
        # the day's volume counts every level: 10 l at signature and 20 l at PIN pass 25 l
        assert (await buy(j, FLEET_PAN, 2000, "r4", facts=pin)).code == "limit_exceeded"
        # raised: the next request sees it, no restart
        await j.write(
            LedgerSetLimits(ref(FLEET_PAN), "pin", Limits(daily_volume=90000), None, 0, "o")
        )
        assert (await buy(j, FLEET_PAN, 2000, "r6", facts=pin)).code == "approved"
        # a reversed sale no longer counts (the day: r3 and r6 at PIN, 4000; limit 5000)
        await j.write(LedgerReverse("r1", time.time()))
        assert (await buy(j, FLEET_PAN, 1000, "r7", facts=signature)).code == "approved"
        await j.write(
            LedgerSetLimits(ref(FLEET_PAN), "signature", Limits(per_txn_amount=1000), None, 0, "o")
        )
        assert (await buy(j, FLEET_PAN, 1001, "r8", facts=signature)).code == "limit_exceeded"


async def test_odometer_backwards_is_flagged_not_declined(target: Target) -> None:
    async with ledger_journal(target) as j:
        await open_fleet(j, "F1", 100000, FLEET_PAN)

        def at(km: int) -> SaleFacts:
            return SaleFacts(prompted=Prompted(driver="D7", vehicle="AB12CDE", odometer=km))

        assert (await buy(j, FLEET_PAN, 100, "r1", facts=at(50000))).flags == ()
        back = await buy(j, FLEET_PAN, 100, "r2", facts=at(49000))
        assert back.code == "approved" and back.flags == ("odometer_backwards",)
        assert (await buy(j, FLEET_PAN, 100, "r3", facts=at(50100))).flags == ()


async def test_odometer_backwards_declines_where_configured(tmp_path: Path) -> None:
    from forecourt.switch.ledger import LedgerAuthorise

    async with ledger_journal(tmp_path / "j.db") as j:
        await open_fleet(j, "F1", 100000, FLEET_PAN)
        facts = SaleFacts(prompted=Prompted(odometer=900))
        await buy(j, FLEET_PAN, 100, "r1", facts=SaleFacts(prompted=Prompted(odometer=1000)))
        (d,) = await j.write(
            LedgerAuthorise("r2", ref(FLEET_PAN), "purchase", 100, "978", facts, 0.0,
                            odometer_declines=True)
        )  # fmt: skip
        assert d.code == "odometer"
    conn = sqlite3.connect(tmp_path / "j.db")
    rows = conn.execute("SELECT reference, odometer, vehicle, flags FROM ledger_txns").fetchall()
    assert ("r2", 900, None, "odometer_backwards") in rows


async def test_the_database_holds_no_pan(tmp_path: Path) -> None:
    async with ledger_journal(tmp_path / "j.db") as j:
        await open_fleet(j, "F1", 100000, FLEET_PAN)
        await buy(j, FLEET_PAN, 100, "r1")
    assert FLEET_PAN.encode() not in (tmp_path / "j.db").read_bytes()
