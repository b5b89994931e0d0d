"""Host totals over real sockets: the switch's 1520 (IFSF, 1993) and 0500 (1987)
to the acquirer simulator, which keeps its own totals of what it approved and
answers truthfully: in balance, then out of balance when it dropped one approval
from its totals and counted another twice (its `drop_from_totals` and
`double_in_totals` rules)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from forecourt.simulators.acquirer import AcquirerSimulator, simple_config
from forecourt.simulators.rules import Rule
from forecourt.switch.business_day import Cutover, business_day_of
from forecourt.switch.day import RequestHostTotals
from forecourt.switch.journal import Journal, open_journal
from forecourt.switch.log import luhn_ok

from tests.switch.harness import TEST_PAN, Terminal, _unused_port, started_switch

pytestmark = pytest.mark.slow


def _pan(prefix: str) -> str:
    return next(prefix + str(d) for d in range(10) if luhn_ok(prefix + str(d)))


DROPPED = _pan("476173900102002")
DOUBLED = _pan("476173900102003")


class SimulatorHost:
    """The acquirer simulator where the harness expects its small host."""

    def __init__(self, sim: AcquirerSimulator) -> None:
        self.sim = sim

    async def serve(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        await self.sim.run(task_status=task_status)

    @property
    def connections(self) -> int:
        return self.sim.connections_accepted


async def _approved(terminal: Terminal, amount: int, pan: str = TEST_PAN) -> Any:
    request = terminal.purchase(amount, pan=pan)
    answer = await terminal.exchange(request)
    assert answer.fields["39"] in ("000", "00"), answer.fields
    return request


async def _host_totals(journal: Journal, day: str) -> tuple[Any, ...]:
    (request_id,) = await journal.write(RequestHostTotals(day, "bank", time.time(), "test"))
    with trio.fail_after(10):
        while True:
            rows = await journal.rows(
                "SELECT state, request_mti, action_code, in_balance, ours, theirs, stan, error "
                "FROM host_totals WHERE id = ?",
                (request_id,),
            )
            if rows and rows[0][0] in ("answered", "failed"):
                return rows[0]
            await trio.sleep(0.05)


@pytest.mark.parametrize(("dialect", "mti", "in_code", "out_code"), [
    ("ifsf", "1520", "500", "501"),
    ("iso87ascii", "0500", "00", "00"),
])  # fmt: skip
async def test_host_totals_in_and_out_of_balance(
    tmp_path: Path, dialect: str, mti: str, in_code: str, out_code: str
) -> None:
    sim = AcquirerSimulator(
        simple_config(
            [
                Rule("left out of the host's totals", "drop_from_totals", pan_prefixes=(DROPPED,)),
                Rule("counted twice by the host", "double_in_totals", pan_prefixes=(DOUBLED,)),
            ],
            dialect=dialect,
        )
    )
    day = business_day_of(time.time(), Cutover()).isoformat()
    async with (
        started_switch(
            tmp_path, host=SimulatorHost(sim), dialect=dialect, mac=False,  # type: ignore[arg-type]
            business_day={"poll_s": 0.05}, metrics_port=_unused_port(),
        ) as sut,
        sut.terminal() as terminal,
        open_journal(sut.config) as journal,  # as `forecourt day host-totals` does
    ):  # fmt: skip
        first = await _approved(terminal, 1000)
        await _approved(terminal, 2500)
        reversal = await terminal.exchange(terminal.reversal(first))
        assert reversal.fields["39"] in ("400", "00")
        with trio.fail_after(10):  # the reversal reaches the host through SAF
            while sim.logic.reversals_applied < 1:
                await trio.sleep(0.02)
            while (await journal.rows(
                "SELECT 1 FROM transactions WHERE state = 'reversed'", ()
            )) == []:  # fmt: skip
                await trio.sleep(0.02)

        state, sent_mti, code, in_balance, ours, theirs, stan, error = await _host_totals(
            journal, day
        )
        assert (state, sent_mti, code, error) == ("answered", mti, in_code, None)
        assert bool(in_balance) is True and theirs is None and stan
        figures = json.loads(ours)
        assert figures["debits"] == [2, 3500] and figures["debit_reversals"] == [1, 1000]
        assert figures["credits"] == [0, 0] and figures["net"] == 2500

        await _approved(terminal, 700, pan=DROPPED)
        await _approved(terminal, 900, pan=DOUBLED)
        state, _, code, in_balance, ours, theirs, _, _ = await _host_totals(journal, day)
        assert (state, code) == ("answered", out_code)
        assert in_balance is not None and not bool(in_balance)
        ours_f, theirs_f = json.loads(ours), json.loads(theirs)
        assert ours_f["debits"] == [4, 5100]
        # the host's own figures: one dropped (700), one counted twice (900)
        assert theirs_f["debits"] == [4, 5100 - 700 + 900]
        assert theirs_f["debit_reversals"] == ours_f["debit_reversals"]
        assert sim.totals.reconciliations == 2

        assert sut.running.metrics_port is not None
        async with httpx.AsyncClient() as client:
            text = (await client.get(f"http://127.0.0.1:{sut.running.metrics_port}/metrics")).text
        assert 'forecourt_host_totals_total{acquirer="bank",result="in_balance"} 1.0' in text
        assert 'forecourt_host_totals_total{acquirer="bank",result="out_of_balance"} 1.0' in text
