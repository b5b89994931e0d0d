"""Cashier sign-on and sign-off (1804/880, 881): the operator on every transaction,
declines where a group requires one, totals per operator at the shift close."""

from __future__ import annotations

from pathlib import Path

import pytest
from forecourt.codecs.field48 import decode_field48
from forecourt.codecs.message import Message
from forecourt.switch.cli import main
from forecourt.switch.journal import open_journal

from tests.switch.harness import started_switch
from tests.terminals.messages import cashier_sign_off, cashier_sign_on


async def test_the_cashier_signed_on_is_on_each_transaction(tmp_path: Path) -> None:
    """Where the group does not require a cashier, purchases without one are approved."""
    async with started_switch(tmp_path) as sut, sut.terminal() as terminal:
        await terminal.sign_on()
        before = await terminal.exchange(terminal.purchase(1000))
        on = await terminal.exchange(cashier_sign_on(terminal, "CASH07"))
        assert (on.mti, on.fields["39"]) == ("1814", "800")
        assert decode_field48(on.fields["48"])[15] == "CASH07"
        assert on.raw is not None and terminal.tak is not None
        assert terminal.tak.verify(on.raw[:-8], on.raw[-8:])  # MAC'd like any answer
        during = await terminal.exchange(terminal.purchase(2000))
        off = await terminal.exchange(cashier_sign_off(terminal))
        assert off.fields["39"] == "800"
        assert decode_field48(off.fields["48"])[15] == "CASH07"
        after = await terminal.exchange(terminal.purchase(3000))
        assert [a.fields["39"] for a in (before, during, after)] == ["000"] * 3
    async with open_journal(tmp_path / "journal.db") as journal:
        rows = {r.amount: r.operator_id for r in await journal.list(limit=10)}
    assert rows == {1000: None, 2000: "CASH07", 3000: None}


async def test_a_cashier_is_required_where_the_group_says_so(tmp_path: Path) -> None:
    async with started_switch(tmp_path, require_operator=True) as sut:
        async with sut.terminal() as terminal:
            await terminal.sign_on()
            refused = await terminal.exchange(terminal.purchase(1000))
            assert (refused.mti, refused.fields["39"]) == ("1210", "120")
            assert not [m for m in sut.host.received if m.mti == "1200"]  # never upstream
            await terminal.exchange(cashier_sign_on(terminal, "CASH01"))
            approved = await terminal.exchange(terminal.purchase(1000))
            assert approved.fields["39"] == "000"
            await terminal.exchange(cashier_sign_off(terminal))
            again = await terminal.exchange(terminal.purchase(1000))
            assert again.fields["39"] == "120"
        # the cashier is the journal's: a restart still knows who is signed on
        async with sut.terminal() as terminal:
            await terminal.exchange(cashier_sign_on(terminal, "CASH02"))
        await sut.restart()
        async with sut.terminal() as terminal:
            assert (await terminal.exchange(terminal.purchase(1500))).fields["39"] == "000"
    async with open_journal(tmp_path / "journal.db") as journal:
        rows = await journal.list(limit=10)
    assert {r.operator_id for r in rows if r.amount == 1500} == {"CASH02"}


async def test_an_operator_id_is_required_to_sign_on(tmp_path: Path) -> None:
    async with started_switch(tmp_path) as sut, sut.terminal() as terminal:
        await terminal.sign_on()
        signed_on = cashier_sign_on(terminal, "X")
        fields = {k: v for k, v in signed_on.fields.items() if k != "48"}
        answer = await terminal.exchange(Message(mti="1804", fields=fields))
        assert answer.fields["39"] == "904"
        assert (await terminal.exchange(terminal.purchase(1000))).fields["39"] == "000"


async def test_shift_totals_per_cashier(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    async with started_switch(tmp_path) as sut, sut.terminal() as terminal:
        await terminal.sign_on()
        await terminal.exchange(cashier_sign_on(terminal, "ANNA"))
        await terminal.exchange(terminal.purchase(1000))
        await terminal.exchange(terminal.purchase(100000))  # declined by the host
        await terminal.exchange(cashier_sign_on(terminal, "BEN"))  # takes over the till
        await terminal.exchange(terminal.purchase(2500))
        await terminal.exchange(terminal.purchase(500))
        await terminal.exchange(cashier_sign_off(terminal))
        await terminal.exchange(terminal.purchase(700))
        closed = await terminal.exchange(terminal.shift_close((4, 4700)))
        assert closed.fields["39"] == "500"
    async with open_journal(tmp_path / "journal.db") as journal:
        (shift,) = await journal.view("SELECT shift_id FROM shifts WHERE terminal_id = 'T0000001'")
        record = await journal.shift("T0000001", str(shift["shift_id"]))
    assert record is not None and record.totals is not None
    assert record.totals["by_operator"] == {
        "ANNA": {"debit": [1, 1000], "declined": [1, 100000]},
        "BEN": {"debit": [2, 3000]},
        "-": {"debit": [1, 700]},
    }
    # `forecourt journal totals` shows them under the shift's own totals
    shown = "--terminal", "T0000001", "--shift", str(shift["shift_id"])
    assert main(["journal", "totals", "--data-dir", str(tmp_path), *shown]) == 0
    out = capsys.readouterr().out
    assert "per cashier" in out
    rows = [[c.strip() for c in line.split("│")[1:5]] for line in out.splitlines()]
    assert ["BEN", "debit", "2", "3000"] in rows
