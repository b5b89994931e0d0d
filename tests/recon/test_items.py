"""Error items: each action closes an item once, audited with the operator and the
time; a second action is refused (by the code and by the database); the ledger is
reconciled against the journal like a party's file, and an adjustment posts to it."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import attrs
import pytest
import trio
from forecourt.switch.business_day import business_day_of, day_bounds
from forecourt.switch.config import SwitchConfig
from forecourt.switch.journal import (
    PARKED_HORIZON_S,
    EnqueueSaf,
    InsertTransaction,
    Journal,
    JournalError,
    open_journal,
)
from forecourt.switch.ledger import LedgerStatement
from forecourt.switch.recon import ActOnItem, ItemRefused, MatchDay, RunResult
from forecourt.switch.recon.actions import act_on_item
from forecourt.switch.recon.matching import ledger_approval_code
from forecourt.switch.recon.reads import Item, items

from tests.recon import scenario
from tests.recon.test_matching import _import, _match
from tests.switch.ledger_fixtures import FLEET_PAN, buy, open_fleet


async def _bank_items(journal: Journal, cfg: SwitchConfig, tmp: Path) -> dict[str, Item]:
    await scenario.journal_day(journal)
    await _import(journal, cfg, "bank", scenario.csv_file(tmp / "s.csv"))
    await _match(journal, cfg, "bank")
    return {i.reference: i for i in await items(journal, "bank")}


def test_resolve_and_write_off_are_audited_and_close_once(tmp_path: Path) -> None:
    cfg = scenario.config(tmp_path)

    async def main() -> None:
        async with open_journal(cfg) as journal:
            by_ref = await _bank_items(journal, cfg, tmp_path)
            dup, short = by_ref["000000000007"], by_ref["000000000006"]
            with pytest.raises(ItemRefused, match="write_off needs --reason"):
                await act_on_item(journal, short.id, "write_off", "alice")
            before = time.time()
            await act_on_item(journal, dup.id, "resolve", "alice", "bank refunds the copy")
            await act_on_item(journal, short.id, "write_off", "bob", "tip keyed in by hand")
            with pytest.raises(ItemRefused, match="resolved already"):
                await act_on_item(journal, dup.id, "write_off", "carol", "again")
            # the database refuses too, whatever the code checked before
            with pytest.raises(JournalError):
                await journal.write(ActOnItem(dup.id, "resolve", "carol", time.time()))
            closed = {i.id: i for i in await items(journal, "bank", state="resolved")}
            still_open = await items(journal, "bank", state="open")
        assert (closed[dup.id].action, closed[dup.id].operator) == ("resolve", "alice")
        assert (closed[short.id].action, closed[short.id].reason) == (
            "write_off", "tip keyed in by hand",
        )  # fmt: skip
        assert all(before <= (closed[i].acted_at or 0) <= time.time() for i in closed)
        assert {i.id for i in still_open}.isdisjoint(closed)
        with sqlite3.connect(cfg.journal_path) as db, pytest.raises(sqlite3.IntegrityError):
            db.execute(
                "INSERT INTO recon_actions (item_id, action, operator, at) VALUES (?, ?, ?, ?)",
                (dup.id, "resolve", "mallory", 0.0),
            )

    trio.run(main)


def test_reverse_at_the_party_makes_the_parked_reversal_due(tmp_path: Path) -> None:
    cfg = scenario.config(tmp_path)

    async def main() -> None:
        async with open_journal(cfg) as journal:
            by_ref = await _bank_items(journal, cfg, tmp_path)
            item = by_ref["000000000004"]  # approved at the switch, never settled
            assert item.match_class == "switch_only" and item.txn_id is not None
            now = time.time()
            # the parked reversal the switch keeps for every approved transaction
            # (sealed bytes: nobody unseals them in this test)
            await journal.write(
                EnqueueSaf(item.txn_id, "bank", "1420", b"sealed", now, now + PARKED_HORIZON_S + 60)
            )
            nothing = by_ref["000000000005"]  # at the party only: no journal row
            with pytest.raises(ItemRefused, match="names no journal transaction"):
                await act_on_item(journal, nothing.id, "reverse", "alice")
            await act_on_item(journal, item.id, "reverse", "alice", "never settled")
            row = await journal.get(item.txn_id)
            [saf] = await journal.saf_entries_of([item.txn_id])
            [closed] = await items(journal, item_id=item.id)
        assert row is not None and row.state == "reversal_pending"
        assert saf.next_attempt_at <= time.time() and "alice" in (saf.last_error or "")
        assert (closed.state, closed.action, closed.operator) == ("resolved", "reverse", "alice")

    trio.run(main)


def test_the_ledger_reconciles_and_an_adjustment_posts(tmp_path: Path) -> None:
    cfg = scenario.config(tmp_path)
    party = cfg.recon.party("ledger")
    assert party is not None

    async def main() -> None:
        async with open_journal(cfg) as journal:
            await open_fleet(journal, "ACC1", 100_000, FLEET_PAN)
            now = time.time()
            # both sides: matched; the ledger alone; the journal alone
            assert (await buy(journal, FLEET_PAN, 1500, "T1:000001")).approved == 1500
            assert (await buy(journal, FLEET_PAN, 900, "T1:000002")).approved == 900
            both = scenario.row("000000000001", "approved", 1500, now, route="ledger")
            alone = scenario.row("000000000002", "approved", 700, now, route="ledger")
            await journal.write(
                InsertTransaction(attrs.evolve(both, auth_code=ledger_approval_code("T1:000001"))),
                InsertTransaction(attrs.evolve(alone, auth_code="ZZZZZZ")),
            )
            day = business_day_of(now, cfg.business_day.cutover)
            start, end = day_bounds(day, cfg.business_day.cutover)
            [run] = await journal.write(MatchDay(party, day.isoformat(), start, end, now))
            assert isinstance(run, RunResult)
            found = {i.match_class: i for i in await items(journal, "ledger")}
            ledger_only = found["party_only"]
            await act_on_item(journal, ledger_only.id, "adjust", "alice", "refund", amount=900)
            [postings] = await journal.write(LedgerStatement("ACC1", now - 5, time.time() + 5))
        assert run.counts["matched"] == 1
        assert set(found) == {"party_only", "switch_only"}
        assert ledger_only.party_amount == 900 and ledger_only.masked_pan == "707700******1111"
        assert isinstance(postings, list)
        assert any("adjustment" in map(str, p) and 900 in p for p in postings)

    trio.run(main)
