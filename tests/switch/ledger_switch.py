"""A switch whose cards starting with 7 go to a ledger acquirer, on a real data dir."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import attrs
import trio
from forecourt.codecs.dialect import get_dialect
from forecourt.keys.lmk import Lmk, load_lmk
from forecourt.keys.store import KeyStore
from forecourt.switch.authorisers.ledger import ledger_card_key
from forecourt.switch.config import SwitchConfig, load_config, parse_config
from forecourt.switch.demo_ledger import SeedAccount, seed_ledger
from forecourt.switch.journal import open_journal
from forecourt.switch.server import RunningSwitch, run_switch

from tests.switch.harness import Terminal

TERMINALS = ("T0000001", "T0000002")


def ledger_config(data_dir: Path, dialect: str = "ifsf", **ledger: Any) -> SwitchConfig:
    doc: dict[str, Any] = {
        "node": "ledger-node",
        "data_dir": str(data_dir),
        "default_route": "ledger",
        "logging": {"level": "warning", "format": "json"},
        "saf": {"backoff_initial_s": 0.1, "backoff_max_s": 0.5},
        "listeners": [
            {"name": "pos", "host": "127.0.0.1", "port": 0, "dialect": dialect,
             "terminal_group": "site"}
        ],
        "terminal_groups": [
            {"name": "site", "terminals": list(TERMINALS), "mac_required": False,
             "max_in_flight": 8}
        ],
        "acquirers": [{"name": "ledger", "kind": "ledger", **ledger}],
        "routes": [{"prefixes": ["7"], "acquirer": "ledger"}],
    }  # fmt: skip
    return parse_config(doc, source="test")


@attrs.define
class LedgerSwitch:
    config: SwitchConfig
    running: RunningSwitch
    card_key: bytes
    journal_path: Path

    @contextlib.asynccontextmanager
    async def terminal(self, terminal_id: str = "T0000001") -> AsyncIterator[Terminal]:
        port = next(iter(self.running.ports.values()))
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        try:
            dialect = get_dialect(self.config.listeners[0].dialect)
            yield Terminal(stream, dialect, terminal_id, None)
        finally:
            await stream.aclose()


@contextlib.asynccontextmanager
async def ledger_switch(
    data_dir: Path, accounts: Sequence[SeedAccount], dialect: str = "ifsf", **ledger: Any
) -> AsyncIterator[LedgerSwitch]:
    lmk = Lmk.generate()
    KeyStore.init(data_dir, lmk=lmk).close()
    config = ledger_config(data_dir, dialect, **ledger)
    card_key = ledger_card_key(lmk)
    async with open_journal(config) as journal:
        await seed_ledger(journal, card_key, accounts, time.time())
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        running = await nursery.start(lambda **kw: run_switch(config, stop=stop, lmk=lmk, **kw))
        try:
            yield LedgerSwitch(config, running, card_key, data_dir / "journal.db")
        finally:
            stop.set()


async def seed_served_ledger(config_path: Path, lmk_file: Path, account: SeedAccount) -> None:
    """An account (and its cards) in the journal of a `forecourt serve` on `config_path`,
    its card references under the key the LMK file gives (before the switch starts)."""
    config = load_config(config_path)
    card_key = ledger_card_key(load_lmk(lmk_file, data_dir=config.data_dir))
    async with open_journal(config) as journal:
        await seed_ledger(journal, card_key, [account], time.time())
