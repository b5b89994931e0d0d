"""A hypothesis state machine of the grey records: grey-locks, results, unlocks with
and without the ATC, repeats and the stale-record check, in any order, on a real
SQLite journal file through the backend's writer (`run_batch`).

The model holds each card transaction's record; the invariants: every record the
model has is in the table exactly once in the model's state, each one is debited
at most once (one hold posting per record), and the account's books are what the
model's closed records debited.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import attrs
from forecourt.codecs.masking import mask_pan
from forecourt.switch.grey import (
    CardFacts,
    GreyCounts,
    GreyFlagStale,
    GreyList,
    GreyLock,
    GreyResult,
    GreyUnlock,
)
from forecourt.switch.journal import SqliteJournal
from forecourt.switch.ledger import LedgerAddCard, LedgerBalances, LedgerFund, LedgerOpenAccount
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from tests.switch.ledger_fixtures import CONSUMER_PAN, ref

atcs = st.integers(min_value=1, max_value=5)
amounts = st.integers(min_value=0, max_value=6_000)
TAC = "A1B2C3D4"


@attrs.define
class Rec:
    amount: int
    at: float
    state: str = "open"
    final: int | None = None
    debited: int = 0


class GreyMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self._dir = tempfile.TemporaryDirectory()
        self.backend = SqliteJournal(Path(self._dir.name) / "j.db", "normal")
        self.clock = 1000.0
        self.topups = 10_000
        self.model: dict[int, Rec] = {}
        self.card = ref(CONSUMER_PAN)
        self.run(LedgerOpenAccount("C1", "consumer", "", "978", 0.0, "t"))
        self.run(LedgerFund("C1", "topup", self.topups, "", 0.0, "t"))
        self.run(LedgerAddCard(self.card, mask_pan(CONSUMER_PAN), "C1", "none", "", (), 0, "t"))

    def run(self, op: Any) -> Any:
        (outcome,) = self.backend.run_batch([[op]])
        assert not isinstance(outcome, Exception), outcome
        return outcome[0]

    def teardown(self) -> None:
        self.backend.close()
        self._dir.cleanup()

    def tick(self) -> float:
        self.clock += 1.0
        return self.clock

    def facts(self, atc: int, amount: int) -> CardFacts:
        return CardFacts(self.card, atc, amount, "978", "T0000001", "01", "02",
                         "261201120000", TAC, "n1", self.tick())  # fmt: skip

    def available(self) -> int:
        return self.topups - sum(r.debited for r in self.model.values())

    def close(self, rec: Rec, amount: int) -> None:
        rec.final = amount
        rec.debited = min(amount, self.available())
        rec.state = "completed" if amount > 0 else "cleared"

    @rule(atc=atcs, amount=amounts)
    def grey_lock(self, atc: int, amount: int) -> None:
        answer = self.run(GreyLock(self.facts(atc, amount)))
        if atc in self.model:
            assert (answer.code, answer.new) == ("already", False)
        else:
            assert (answer.code, answer.new) == ("recorded", True)
            self.model[atc] = Rec(amount, self.clock)
        assert answer.record.state == self.model[atc].state

    @rule(atc=atcs, amount=amounts)
    def result(self, atc: int, amount: int) -> None:
        answer = self.run(GreyResult(self.facts(atc, amount)))
        rec = self.model.get(atc)
        if rec is None:
            rec = self.model[atc] = Rec(amount, self.clock)
        if rec.state in ("open", "flagged"):
            self.close(rec, amount)
            assert (answer.code, answer.new) == ("completed", True)
        else:
            assert (answer.code, answer.new) == ("already", False)
        assert answer.record.debited == rec.debited

    @rule(atc=st.none() | atcs)
    def unlock(self, atc: int | None) -> None:
        answer = self.run(GreyUnlock(self.card, atc, "T0000009", "n2", self.tick()))
        if atc is None:
            still = [(r.at, a) for a, r in self.model.items() if r.state in ("open", "flagged")]
            atc = max(still)[1] if still else None
        rec = self.model.get(atc) if atc is not None else None
        if rec is None:
            assert answer.code == "no_grey_record"
            return
        new = rec.state in ("open", "flagged")
        if new:
            self.close(rec, rec.amount)
        assert answer.code == ("complete" if (rec.final or 0) > 0 else "clear")
        assert answer.new == new
        assert answer.record.atc == atc and answer.record.final_amount == rec.final

    @rule(age=st.integers(min_value=0, max_value=20))
    def stale_check(self, age: int) -> None:
        older_than = self.clock - age
        flagged = self.run(GreyFlagStale(older_than, self.clock))
        expected = [r for r in self.model.values() if r.state == "open" and r.at < older_than]
        assert flagged == len(expected)
        for r in expected:
            r.state = "flagged"

    @rule()
    def unknown_card(self) -> None:
        assert self.run(GreyUnlock(ref("7080009999999999"), None, "T1", "n1", 1.0)).code == (
            "unknown_card"
        )

    @invariant()
    def every_record_once_debited_once(self) -> None:
        rows = {r.atc: r for r in self.run(GreyList(limit=1000))}
        assert set(rows) == set(self.model)
        for atc, rec in self.model.items():
            assert (rows[atc].state, rows[atc].debited) == (rec.state, rec.debited)
        counts = self.run(GreyCounts())
        assert sum(counts.values()) == len(self.model)
        balances = self.run(LedgerBalances("C1"))
        available, held, settled = (int(v) for v in balances[0][4:7])
        assert held == 0
        assert settled == sum(r.debited for r in self.model.values())
        assert available == self.available() >= 0
        cur = self.backend._conn.execute(
            "SELECT reference FROM ledger_postings WHERE kind = 'hold' "
            "GROUP BY reference HAVING count(*) > 1"
        )
        assert cur.fetchall() == []


GreyMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)
TestGreyMachine = GreyMachine.TestCase
