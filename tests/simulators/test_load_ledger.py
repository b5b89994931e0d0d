"""`sim load --ledger-card`: purchases on the switch's own ledger cards mixed into a
load run, against a switch whose ledger holds them (real TCP, real SQLite journal)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from forecourt.simulators._toml import SimConfigError
from forecourt.simulators.load import LoadOptions, MixEntry, run_load
from forecourt.simulators.load_options import with_ledger_cards
from forecourt.simulators.wire import wire_format
from forecourt.switch.demo_ledger import SeedAccount, SeedCard

from tests.switch.ledger_switch import ledger_switch

FLEET = "7077001234567890"
CONSUMER = "7080001234567890"
ACCOUNTS = (
    SeedAccount("F1", "fleet", 20000, (SeedCard(FLEET, "vehicle", "AB12CDE"),)),
    SeedAccount("C1", "consumer", 5000, (SeedCard(CONSUMER),)),
)


def test_ledger_cards_join_the_mix() -> None:
    base = (MixEntry(),)
    mix = with_ledger_cards(base, (FLEET, CONSUMER), weight=3.0)
    assert mix[0] == base[0] and mix[1].pans == (FLEET, CONSUMER) and mix[1].weight == 3.0
    assert with_ledger_cards(base, ()) == base
    with pytest.raises(SimConfigError, match="ledger-card"):
        with_ledger_cards(base, ("12ab",))
    with pytest.raises(SimConfigError, match="ledger-weight"):
        with_ledger_cards(base, (FLEET,), weight=0)


async def test_a_load_run_drains_the_ledger_cards(tmp_path: Path) -> None:
    mix = with_ledger_cards((), (FLEET, CONSUMER))
    async with ledger_switch(tmp_path, ACCOUNTS) as sw:
        port = next(iter(sw.running.ports.values()))
        result = await run_load(
            LoadOptions(
                host="127.0.0.1", port=port, wire=wire_format("ifsf"), terminals=2,
                duration_s=1.5, concurrency=2, mix=mix, terminal_prefix="T", seed=5,
            )
        )  # fmt: skip
    assert result.answered > 20 and result.timeouts == 0
    assert set(result.by_action_code) <= {"000", "002", "116"}
    assert "116" in result.by_action_code  # both accounts ran dry
    db = sqlite3.connect(tmp_path / "journal.db")
    assert db.execute("SELECT sum(available) FROM ledger_accounts").fetchone() == (0,)
