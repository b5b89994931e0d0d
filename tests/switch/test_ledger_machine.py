"""A hypothesis state machine of the ledger: holds, captures, releases, reversals and
top-ups in any order keep balance = top-ups - captures - open holds, never negative.

It drives the real SQLite backend's writer (`run_batch`, what the journal's writer
task calls) on a real file. The model keeps, per request, what it holds and what it
captured; the invariants compare the database's books, and the balance rebuilt from
the postings alone, with it.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import attrs
from forecourt.codecs.masking import mask_pan
from forecourt.switch.journal import SqliteJournal
from forecourt.switch.ledger import (
    LedgerAddCard,
    LedgerAuthorise,
    LedgerBalances,
    LedgerComplete,
    LedgerExpire,
    LedgerFund,
    LedgerOpenAccount,
    LedgerReverse,
    LedgerStatement,
    SaleFacts,
)
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, rule

from tests.switch.ledger_fixtures import FLEET_PAN, ref

amounts = st.integers(min_value=1, max_value=20_000)


@attrs.define
class Txn:
    kind: str
    held: int = 0
    captured: int = 0
    state: str = "open"


class LedgerMachine(RuleBasedStateMachine):
    txns = Bundle("txns")

    def __init__(self) -> None:
        super().__init__()
        self._dir = tempfile.TemporaryDirectory()
        self.backend = SqliteJournal(Path(self._dir.name) / "j.db", "normal")
        self.n = 0
        self.topups = 0
        self.model: dict[str, Txn] = {}
        self.completed: set[str] = set()  # originals a completion named
        self.run(LedgerOpenAccount("F1", "fleet", "", "978", 0.0, "t"))
        self.run(
            LedgerAddCard(ref(FLEET_PAN), mask_pan(FLEET_PAN), "F1", "driver", "D1", (), 0, "t")
        )

    def run(self, op: Any) -> Any:
        (outcome,) = self.backend.run_batch([[op]])
        assert not isinstance(outcome, Exception), outcome
        return outcome[0]

    def teardown(self) -> None:
        self.backend.close()
        self._dir.cleanup()

    def held(self) -> int:
        return sum(t.held for t in self.model.values())

    def captured(self) -> int:
        return sum(t.captured for t in self.model.values())

    def available(self) -> int:
        return self.topups - self.captured() - self.held()

    def _reference(self) -> str:
        self.n += 1
        return f"T1|{self.n:06d}|x"

    @rule(amount=amounts)
    def top_up(self, amount: int) -> None:
        self.run(LedgerFund("F1", "topup", amount, "", time.time(), "t"))
        self.topups += amount

    @rule(target=txns, amount=amounts, preauth=st.booleans())
    def authorise(self, amount: int, preauth: bool) -> str:
        reference = self._reference()
        kind = "preauth" if preauth else "purchase"
        op = LedgerAuthorise(
            reference, ref(FLEET_PAN), kind, amount, "978", SaleFacts(), time.time(), 1e12
        )
        take = min(amount, self.available())
        assert self.run(op).approved == take
        if take <= 0:
            self.model[reference] = Txn(kind, state="declined")
        elif preauth:
            self.model[reference] = Txn(kind, held=take)
        else:
            self.model[reference] = Txn(kind, captured=take, state="captured")
        return reference

    @rule(target=txns, original=txns, amount=st.integers(min_value=0, max_value=25_000))
    def complete(self, original: str, amount: int) -> str:
        reference = self._reference()
        settled = self.run(
            LedgerComplete(reference, original, ref(FLEET_PAN), amount, SaleFacts(), 1.0)
        )
        if original in self.completed:
            assert settled.code == "already"
            return reference
        self.completed.add(original)
        t = self.model.get(original, Txn("unknown", state="none"))
        held = t.held if t.state == "open" else 0
        from_hold = min(amount, held)
        extra = min(amount - from_hold, self.available())
        assert (settled.captured, settled.restored) == (from_hold + extra, held - from_hold)
        if t.kind == "preauth" and t.state == "open":
            t.state, t.held = "captured", 0
        self.model[reference] = Txn("completion", captured=from_hold + extra, state="captured")
        return reference

    @rule(original=txns)
    def reverse(self, original: str) -> None:
        self.run(LedgerReverse(original, time.time()))
        t = self.model.get(original)
        if t is None:
            self.model[original] = Txn("tombstone", state="reversed")
        elif t.state not in ("reversed", "declined"):
            t.held = t.captured = 0
            t.state = "reversed"

    @rule()
    def window_ends(self) -> None:
        self.run(LedgerExpire(2e12, limit=10_000))
        for t in self.model.values():
            if t.kind == "preauth" and t.state == "open":
                t.held, t.state = 0, "released"

    @invariant()
    def books_add_up(self) -> None:
        rows = self.run(LedgerBalances("F1"))
        available, held, settled = (int(v) for v in rows[0][4:7])
        assert available >= 0
        assert held == self.held()
        assert settled == self.captured()
        assert available == self.topups - settled - held
        postings = self.run(LedgerStatement("F1", -1.0, 1e13))
        book = sum(int(p[5]) * ((p[4] == "available") - (p[3] == "available")) for p in postings)
        assert book == available


LedgerMachine.TestCase.settings = settings(max_examples=50, stateful_step_count=30, deadline=None)
TestLedgerMachine = LedgerMachine.TestCase
