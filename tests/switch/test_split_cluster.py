"""Two switch nodes on one PostgreSQL never both accept legs that over-pay one sale.

The cluster of tests/switch/test_cluster.py (two in-process nodes, one database, one
host that answers 2000.00 after 2 s). A leg at node A is still at the host when a
leg of the same sale reaches node B: B sees A's claim in the journal and refuses
without asking the host. A's leg then times out (the nodes wait 1 s) and its claim
is freed with its reversal.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import trio
from forecourt.codecs.split import SplitGroup, with_split_group
from forecourt.switch.journal import open_journal

from tests.switch.split_harness import amount_due
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
