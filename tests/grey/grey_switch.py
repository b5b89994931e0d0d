"""A switch with IC fuel cards on, its cards in a ledger, terminals signed up with keys.

The terminals are in the key store (registry) and MAC every request under the TAK
the ceremony installed, as the IC card messages require. The card's TAC is the
simulated card's (simulators/ic_card_templates.py), which `tac_check = "test"`
verifies: a test double for the card issuer's keys, which cannot exist here.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import attrs
import trio
from forecourt.codecs.dialect import get_dialect
from forecourt.codecs.message import Message
from forecourt.keys.exchange import install_key_change
from forecourt.keys.keyring import MacKey
from forecourt.keys.lmk import Lmk
from forecourt.keys.store import KeyStore
from forecourt.simulators.field48_steps import with_field48
from forecourt.simulators.ic_card_templates import ic_card_request, simulated_card_tac
from forecourt.switch.authorisers.ledger import ledger_card_key
from forecourt.switch.config import SwitchConfig, parse_config
from forecourt.switch.demo_ledger import SeedAccount, SeedCard, seed_ledger
from forecourt.switch.journal import open_journal
from forecourt.switch.server import RunningSwitch, run_switch

from tests.switch.harness import Terminal, _unused_port

PAN = "7090001000000001"  # an IC fuel card of account IC-1
BLOCKED_PAN = "7090002000000001"
UNKNOWN_PAN = "7090009999999999"
OPENING = 20_000
TERMINALS = ("T0000001", "T0000002", "T0000003")
ACCOUNTS = (
    SeedAccount("IC-1", "consumer", OPENING, (SeedCard(PAN),)),
    SeedAccount("IC-2", "consumer", OPENING, (SeedCard(BLOCKED_PAN, status="blocked"),)),
)


def grey_doc(data_dir: Path, **over: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "node": over.pop("node", "grey-a"),
        "data_dir": str(data_dir),
        "default_route": "ledger",
        "metrics": {"host": "127.0.0.1", "port": _unused_port()},
        "logging": {"level": "warning", "format": "json"},
        "listeners": [
            {"name": "pos", "host": "127.0.0.1", "port": 0,
             "dialect": over.pop("dialect", "ifsf"), "terminal_group": "site"}
        ],
        "terminal_groups": [
            {"name": "site", "terminals": "registry", "mac_required": True, "max_in_flight": 8}
        ],
        "acquirers": [{"name": "ledger", "kind": "ledger"}],
        "routes": [{"prefixes": ["7"], "acquirer": "ledger"}],
        "ic_cards": {
            "enabled": over.pop("enabled", True),
            "acquirer": "ledger",
            "tac_check": "test",
            "check_interval_s": over.pop("check_interval_s", 60.0),
            "grey_record_max_age_s": over.pop("max_age_s", 86400.0),
        },
    }  # fmt: skip
    if "database" in over:
        doc["database"] = over.pop("database")
    assert not over, over
    return doc


@attrs.define
class Keys:
    lmk: Lmk
    taks: dict[str, MacKey]


def make_keys(keys_dir: Path, dsn: str | None = None) -> Keys:
    lmk = Lmk.generate()
    store = KeyStore.init(keys_dir, dsn=dsn, lmk=lmk)
    taks = {}
    try:
        for tid in TERMINALS:
            ceremony = store.add_terminal(tid)
            taks[tid] = install_key_change(ceremony.clear_kek, ceremony.payload).mac_key()
    finally:
        store.close()
    return Keys(lmk, taks)


async def seed(config: SwitchConfig, lmk: Lmk) -> None:
    async with open_journal(config) as journal:
        await seed_ledger(journal, ledger_card_key(lmk), ACCOUNTS, time.time())


@attrs.define
class GreySwitch:
    config: SwitchConfig
    running: RunningSwitch
    keys: Keys

    @contextlib.asynccontextmanager
    async def terminal(self, terminal_id: str = "T0000001") -> AsyncIterator[IcTerminal]:
        port = next(iter(self.running.ports.values()))
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        try:
            dialect = get_dialect(self.config.listeners[0].dialect)
            yield IcTerminal(stream, dialect, terminal_id, self.keys.taks[terminal_id])
        finally:
            await stream.aclose()


@attrs.define
class IcTerminal(Terminal):
    """A pump terminal reading an IC fuel card."""

    def ic(
        self, template: str, pan: str = PAN, elements: Mapping[int, str] | None = None
    ) -> Message:
        message = ic_card_request(
            template,
            terminal_id=self.terminal_id.ljust(8),
            merchant_id="FORECOURT000001",
            pan=pan,
            amount=0,
            currency="978",
            stan=self.next_stan(),
            now=time.time(),
        )
        return with_field48(message, elements or {})

    def debit(self, template: str, atc: int, amount: int, pan: str = PAN) -> Message:
        """A grey-lock or result for `amount`, with the card's TAC for it."""
        tac = simulated_card_tac(pan, atc, amount, self.terminal_id.ljust(8))
        message = self.ic(template, pan, {50: f"{atc:05d}", 51: tac.hex(), 52: "0302"})
        return message.with_fields({4: f"{amount:012d}"})


@contextlib.asynccontextmanager
async def grey_switch(
    data_dir: Path, keys: Keys | None = None, *, seeded: bool = False, **over: Any
) -> AsyncIterator[GreySwitch]:
    """A switch on `data_dir` (its key store there unless `keys` is given)."""
    keys = keys or make_keys(data_dir)
    config = parse_config(grey_doc(data_dir, **over), source="test")
    if not seeded:
        await seed(config, keys.lmk)
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        running = await nursery.start(
            functools.partial(run_switch, config, stop=stop, lmk=keys.lmk)
        )
        try:
            yield GreySwitch(config, running, keys)
        finally:
            stop.set()
