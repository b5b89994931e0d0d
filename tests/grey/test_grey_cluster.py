"""Two switch nodes on one PostgreSQL: a grey record written through node A is found,
unlocked and debited once through node B, and a result and an unlock racing at the
two nodes for one card transaction close it once."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio
from forecourt.codecs.field48 import decode_field48
from forecourt.codecs.message import Message
from forecourt.switch.journal import open_journal
from forecourt.switch.ledger import LedgerBalances

from tests.grey.grey_switch import OPENING, IcTerminal, grey_switch, make_keys

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


async def test_unlock_at_node_b_finds_the_record_of_node_a(
    tmp_path: Path, postgres_db: str
) -> None:
    keys = make_keys(tmp_path / "keys", dsn=postgres_db)
    async with (
        grey_switch(tmp_path / "a", keys, node="node-a", database=postgres_db) as a,
        grey_switch(tmp_path / "b", keys, node="node-b", database=postgres_db, seeded=True) as b,
        a.terminal("T0000001") as pump,
        b.terminal("T0000002") as indoor,
    ):
        assert (await pump.exchange(pump.debit("grey_lock", 41, 2500))).fields["39"] == "000"
        answer = await indoor.exchange(indoor.ic("grey_unlock"))
        assert (answer.fields["39"], answer.fields["4"]) == ("000", "000000002500")
        data = decode_field48(answer.fields["48"])
        assert data[50] == "00041" and data[53][13:21] == "T0000001"
        assert (await indoor.exchange(indoor.ic("grey_unlock"))).fields["39"] == "914"

        # a result at A and an unlock at B for the same card transaction, at once
        assert (await pump.exchange(pump.debit("grey_lock", 42, 1000))).fields["39"] == "000"
        codes: list[str] = []

        async def send(t: IcTerminal, message: Message) -> None:
            codes.append((await t.exchange(message)).fields["39"])

        async with trio.open_nursery() as race:
            race.start_soon(send, pump, pump.debit("grey_result", 42, 1000))
            race.start_soon(send, indoor, indoor.ic("grey_unlock", elements={50: "00042"}))
        assert codes == ["000", "000"]
        async with open_journal(a.config) as journal:
            (rows,) = await journal.write(LedgerBalances("IC-1"))
            assert isinstance(rows, list)
            assert int(rows[0][4]) == OPENING - 2500 - 1000
