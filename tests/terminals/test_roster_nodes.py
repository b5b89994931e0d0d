"""The roster at two nodes sharing one journal (SQLite file, PostgreSQL): a cashier
signed on at one node is on the other's next transactions within its watch; a code
races to one use; a pending terminal is refused everywhere until it registers."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio
from forecourt.codecs.message import Message
from forecourt.switch.journal import Journal, open_journal
from forecourt.switch.terminals.metrics import TerminalMetrics
from forecourt.switch.terminals.ops import (
    CompleteRegistration,
    CountRegistrationFailure,
    FailureCount,
)
from forecourt.switch.terminals.registration import add_pending, code_matches
from forecourt.switch.terminals.roster import NoOperator, NotRegistered, TerminalRoster
from prometheus_client import CollectorRegistry

_PURCHASE = Message(mti="1200", fields={"11": "000001", "41": "T1"})
_ADVICE = Message(mti="1220", fields={"11": "000002", "41": "T1"})


def _roster(journal: Journal) -> TerminalRoster:
    return TerminalRoster(journal, TerminalMetrics(CollectorRegistry()))


async def _two_nodes(target: Path | str) -> None:
    async with (
        open_journal(target, node="a") as a,
        open_journal(target, node="b") as b,
        trio.open_nursery() as nursery,
    ):
        at_a, at_b = _roster(a), _roster(b)
        await at_a.load()
        await at_b.load()
        nursery.start_soon(at_b.watch, 0.05)
        with pytest.raises(NoOperator):
            at_b.check(_PURCHASE, "T1", require_operator=True)
        at_b.check(_ADVICE, "T1", require_operator=True)  # an advice never needs one
        await at_a.sign_on("T1", "CASH01")
        with trio.fail_after(5):
            while at_b.operator_of("T1") != "CASH01":
                await trio.sleep(0.02)
        at_b.check(_PURCHASE, "T1", require_operator=True)
        assert await at_a.sign_off("T1") == "CASH01"
        with trio.fail_after(5):
            while at_b.operator_of("T1") is not None:
                await trio.sleep(0.02)

        code = await add_pending(a, "T1", expires_in_s=60.0, actor="test", max_attempts=3)
        with trio.fail_after(5):
            while not at_b.is_pending("T1"):
                await trio.sleep(0.02)
        with pytest.raises(NotRegistered):
            at_b.check(_PURCHASE, "T1", require_operator=False)
        (row,) = await b.view("SELECT code_hash FROM terminal_registrations")
        code_hash = str(row["code_hash"])
        assert await code_matches(code_hash, code, at_b.verifications)
        assert not await code_matches(code_hash, "0" * 16, at_b.verifications)
        (count,) = await b.write(CountRegistrationFailure("T1", 1.0))
        assert count == FailureCount(1, False)
        # both nodes verified the code: the compare-and-set lets one bind its serial
        first, second = await a.write(
            CompleteRegistration("T1", code_hash, "SN-A", 2.0),
            CompleteRegistration("T1", code_hash, "SN-B", 2.0),
        )
        assert (first, second) == (True, False)
        nursery.cancel_scope.cancel()
    async with open_journal(target) as journal:
        (row,) = await journal.view("SELECT state, serial FROM terminal_registrations")
    assert row == {"state": "registered", "serial": "SN-A"}


async def test_two_nodes_on_one_sqlite_journal(tmp_path: Path) -> None:
    await _two_nodes(tmp_path / "journal.db")


@pytest.mark.postgres
async def test_two_nodes_on_postgresql(postgres_db: str) -> None:
    await _two_nodes(postgres_db)
