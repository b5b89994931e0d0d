"""Two switch nodes on one PostgreSQL never both accept legs that over-pay one sale,
and a sale paid across both is reversed whole at either.

The cluster of tests/switch/test_cluster.py (two in-process nodes, one database, one
host that answers 2000.00 after 2 s). A leg at node A is still at the host when a
leg of the same sale reaches node B: B sees A's claim in the journal and refuses
without asking the host. A's leg then times out (the nodes wait 1 s) and its claim
is freed with its reversal.

The second test: the split set-up (tests/switch/split_harness.py) on two nodes, the
ledger's accounts in the same PostgreSQL database.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import trio
from forecourt.codecs.split import SplitGroup, with_split_group
from forecourt.switch.journal import open_journal

from tests.switch.split_harness import (
    BANK_PAN,
    CONSUMER_BALANCE,
    FLEET_BALANCE,
    T1,
    amount_due,
    consumer_pan,
    fleet_pan,
    split_cluster,
)
from tests.switch.test_cluster import cluster

pytestmark = pytest.mark.postgres

SLOW = 200000  # the small host answers this amount after 2 s


async def test_a_leg_at_b_sees_the_claim_of_a_leg_in_flight_at_a(
    tmp_path: Path, postgres_db: str
) -> None:
    group = SplitGroup("000000321", 250000)
    async with cluster(tmp_path, postgres_db) as c:
        async with c.terminal("a") as ta, c.terminal("b") as tb:
            slow = with_split_group(ta.purchase(SLOW), group, ta.dialect.family)
            await ta.send(slow)
            await trio.sleep(0.3)  # A's leg has claimed and is at the host
            other = with_split_group(tb.purchase(SLOW), group, tb.dialect.family)
            refused = await tb.exchange(other)
            timed_out = await ta.receive(timeout=5.0)
        assert refused.fields["39"] == "110" and amount_due(refused) == 250000
        assert timed_out.fields["39"] == "911" and amount_due(timed_out) == 250000
        assert c.purchases_at_host(SLOW) == 1  # B never asked the host
        async with open_journal(c.dsn, node="reader") as journal:
            state = await journal.split_group("T0000001", group.group_id)
    assert state is not None and (state.claimed, state.approved) == (0, 0)


async def test_a_sale_paid_at_both_nodes_is_reversed_whole_at_either(
    tmp_path: Path, postgres_db: str
) -> None:
    group = SplitGroup("000000322", 20000)
    async with split_cluster(tmp_path, postgres_db) as c:
        a, b = c.nodes["a"], c.nodes["b"]
        async with a.terminal() as ta, b.terminal() as tb:
            fleet = await a.leg(ta, fleet_pan(7), 20000, group)
            consumer = await b.leg(tb, consumer_pan(7), 5000, group)  # B sees A's leg
            bank = await a.leg(ta, BANK_PAN, 2000, group)
            assert [amount_due(x) for x in (fleet, consumer, bank)] == [5000, 2000, 0]
            # a fleet leg now, at B, is out of order: refused, the ledger never asked
            late = await b.leg(tb, fleet_pan(8), 100, group)
            assert late.fields["39"] == "902"
            assert await b.postings(fleet_pan(8)) == []
            assert await b.balance(fleet_pan(7)) == await b.balance(consumer_pan(7)) == 0
            last = with_split_group(tb.purchase(2000, pan=BANK_PAN), group, tb.dialect.family)
            reversal = with_split_group(tb.reversal(last), group, tb.dialect.family)
            assert (await tb.exchange(reversal)).fields["39"] == "400"
        with trio.fail_after(8):  # SAF: the ledger legs locally, the bank leg upstream
            while (
                await b.balance(fleet_pan(7)),
                await b.balance(consumer_pan(7)),
                c.bank.count(mti="1420") + c.bank.count(mti="1421"),
            ) != (FLEET_BALANCE, CONSUMER_BALANCE, 1):
                await trio.sleep(0.05)
        await trio.sleep(0.5)  # and each once
        assert await a.postings(fleet_pan(7)) == [
            ("hold", 15000),
            ("capture", 15000),
            ("reversal", 15000),
        ]
        assert [kind for kind, _ in await a.postings(consumer_pan(7))] == [
            "hold",
            "capture",
            "reversal",
        ]
        assert c.bank.count(mti="1420") + c.bank.count(mti="1421") == 1
        async with open_journal(postgres_db, node="reader") as journal:
            legs = await journal.split_legs(T1, group.group_id)
    assert [(leg.tender, leg.state, leg.flags) for leg in legs] == [
        ("fleet", "reversed", ()),
        ("consumer", "reversed", ()),
        ("bank", "reversed", ()),
        ("fleet", "declined", ("split_out_of_order",)),
    ]
