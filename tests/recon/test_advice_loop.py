"""The advice action's full loop over real sockets: the switch approves two sales
through the acquirer simulator, whose back office loses one (its `lose` rule:
approved, left out of its totals and its settlement file). Reconciliation finds it
at the switch only and the host totals out of balance; the operator sends an
advice; the SAF sender delivers it (the host's first answer is a system
malfunction, so the second attempt goes as a repeat, 1221 / 0221); the host
settles it by the RRN it first answered; its next settlement file matches the
journal clean and its totals are in balance. A second advice of the same sale is
refused. The journal's files never hold the clear PAN.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import pytest
import trio
from forecourt.codecs.masking import mask_pan
from forecourt.simulators.acquirer import AcquirerSimulator, simple_config
from forecourt.simulators.rules import Rule, named_code
from forecourt.switch.business_day import Cutover, business_day_of, day_bounds
from forecourt.switch.journal import Journal, open_journal
from forecourt.switch.recon import ImportFile, ItemRefused, MatchDay, RunResult
from forecourt.switch.recon.actions import act_on_item
from forecourt.switch.recon.parse import file_sha256
from forecourt.switch.recon.reads import items
from forecourt.switch.server import saf_data_key

from tests.day.test_host_totals import SimulatorHost, _approved, _host_totals, _pan
from tests.recon import scenario
from tests.switch.harness import started_switch

pytestmark = pytest.mark.slow

LOST = _pan("476173900102004")
# the bank party of tests/recon/scenario.py: the acquirer simulator's CSV layout
BANK = scenario.CONFIG_PARTIES["bank"]


async def _reconcile(
    journal: Journal, sim: AcquirerSimulator, path: Path, day: dt.date, cutover: Cutover
) -> RunResult:
    """The host's settlement file as it stands now, imported and matched."""
    sim.settlement.write(path)
    await journal.write(ImportFile(BANK, path, file_sha256(path), time.time()))
    start, end = day_bounds(day, cutover)
    [run] = await journal.write(MatchDay(BANK, day.isoformat(), start, end, time.time()))
    assert isinstance(run, RunResult)
    return run


@pytest.mark.parametrize(("dialect", "advice", "repeat"), [
    ("ifsf", "1220", "1221"),
    ("iso87ascii", "0220", "0221"),
])  # fmt: skip
async def test_an_advice_settles_what_the_host_lost(
    tmp_path: Path, dialect: str, advice: str, repeat: str
) -> None:
    sim = AcquirerSimulator(
        simple_config(
            [
                Rule("the host's back office loses it", "lose", pan_prefixes=(LOST,)),
                Rule("not now", "decline", mtis=(advice,), code="system_malfunction"),
            ],
            dialect=dialect,
        )
    )
    family = sim.logic.family
    approved, busy = named_code("approved", family), named_code("system_malfunction", family)
    async with started_switch(
        tmp_path, host=SimulatorHost(sim), dialect=dialect, mac=False,  # type: ignore[arg-type]
        business_day={"poll_s": 0.05},
    ) as sut, sut.terminal() as terminal:  # fmt: skip
        cutover = sut.config.business_day.cutover
        day = business_day_of(time.time(), cutover)
        assert sut._lmk is not None
        key = saf_data_key(sut._lmk)
        async with open_journal(sut.config, saf_key=key) as journal:  # as the CLI does
            await _approved(terminal, 1000)
            await _approved(terminal, 4250, pan=LOST)
            run = await _reconcile(journal, sim, tmp_path / "before.csv", day, cutover)
            assert (run.counts["matched"], run.counts["switch_only"]) == (1, 1), run.counts
            [item] = await items(journal, "bank", state="open")
            assert item.match_class == "switch_only" and item.switch_amount == 4250
            assert item.txn_id is not None
            row = await journal.get(item.txn_id)
            assert row is not None and row.rrn
            _, _, _, in_balance, *_ = await _host_totals(journal, day.isoformat())
            assert in_balance is not None and not bool(in_balance)

            done = await act_on_item(
                journal, item.id, "advice", "alice", "the host lost it",
                acquirers=sut.config.acquirers, saf_key=key,
            )  # fmt: skip
            assert f"advice {advice} of {item.txn_id} queued for bank" == done
            with trio.fail_after(10):
                while not any(
                    e.kind == "advice_delivered" for e in await journal.events(row.txn_id)
                ):
                    await trio.sleep(0.02)

            seen = [r for r in sim.received if r.mti in (advice, repeat)]
            assert [(r.mti, r.action_code) for r in seen] == [(advice, busy), (repeat, approved)]
            assert {r.masked_pan for r in seen} == {mask_pan(LOST)}
            assert {r.amount for r in seen} == {"000000004250"}
            assert {r.terminal_id for r in seen} == {"T0000001"}

            after = await _reconcile(journal, sim, tmp_path / "after.csv", day, cutover)
            assert (after.counts["matched"], after.counts["switch_only"]) == (2, 0), after.counts
            settled = (tmp_path / "after.csv").read_text().splitlines()
            assert sum(line.startswith(f"{row.rrn},4250,") for line in settled) == 1
            _, _, _, in_balance, *_ = await _host_totals(journal, day.isoformat())
            assert bool(in_balance) is True

            [closed] = await items(journal, item_id=item.id)
            assert (closed.state, closed.action, closed.operator) == ("resolved", "advice", "alice")
            [other] = await journal.rows(
                "SELECT count(*) FROM recon_advices WHERE txn_id = ?", (row.txn_id,)
            )
            assert other[0] == 1
            with pytest.raises(ItemRefused, match="resolved already"):
                await act_on_item(
                    journal, item.id, "advice", "bob", acquirers=sut.config.acquirers, saf_key=key
                )
    # sealed in SAF, masked in the journal: the clear PAN is in none of its files
    for path in Path(sut.config.journal_path).parent.glob("journal.db*"):
        assert LOST.encode() not in path.read_bytes(), path
