"""A switch for the split-tender tests: fleet and consumer cards at the switch's
own ledger, bank cards at an ISO 8583 acquirer simulator.

The ledger (`kind = "ledger"`) is seeded with one account per card, through the
ledger's own seeding (switch/demo_ledger.py `seed_ledger`): fleet cards 150.00,
consumer cards 30.00; it approves up to the balance (002 and the rest due when
short). `bank` approves everything (an amount of 7.77 after a second). The routes
give 7077 fleet and 7080 consumer cards to the ledger with their tenders,
everything else to `bank` as bank cards. Real sockets, a real SQLite journal (or
PostgreSQL), the real key store; the terminal is the tests' (harness.Terminal).
The ledger is read back through a second journal instance, with the ledger's own
operations (`LedgerBalances`, `LedgerStatement`), as `forecourt accounts` does.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

import attrs
import trio
from forecourt.codecs.amounts import AMOUNT_DUE, decode_field54
from forecourt.codecs.dialect import get_dialect
from forecourt.codecs.message import Message
from forecourt.codecs.split import SplitGroup, with_split_group
from forecourt.keys.exchange import install_key_change
from forecourt.keys.lmk import Lmk
from forecourt.keys.store import KeyStore
from forecourt.simulators.acquirer import AcquirerSimulator, simple_config
from forecourt.simulators.rules import Delay, Rule
from forecourt.switch.authorisers.ledger import ledger_card_key
from forecourt.switch.config import SwitchConfig, parse_config
from forecourt.switch.demo_ledger import SeedAccount, SeedCard, seed_ledger
from forecourt.switch.journal import open_journal
from forecourt.switch.ledger import LedgerBalances, LedgerStatement
from forecourt.switch.server import RunningSwitch, run_switch

from tests.switch.harness import Terminal, _unused_port

T1 = "T0000001"
FLEET_BALANCE, CONSUMER_BALANCE = 15000, 3000
BANK_PAN = "4761739001010010"
SLOW = 777  # the bank answers this amount after 1 s
LEDGER = "ledger"
# the card numbers n of fleet_pan(n) and consumer_pan(n) the ledger knows by default
CARDS = (*range(1, 16), 900, 901)


def fleet_pan(n: int) -> str:
    return f"7077{n:012d}"


def consumer_pan(n: int) -> str:
    return f"7080{n:012d}"


def account_of(pan: str) -> str:
    """The ledger account of a harness card: one account per card."""
    return f"{'fleet' if pan.startswith('7077') else 'consumer'}-{int(pan[4:])}"


def ledger_accounts(cards: Iterable[int]) -> tuple[SeedAccount, ...]:
    accounts: list[SeedAccount] = []
    for n in cards:
        fleet, consumer = fleet_pan(n), consumer_pan(n)
        accounts.append(
            SeedAccount(
                account_of(fleet),
                "fleet",
                FLEET_BALANCE,
                (SeedCard(fleet, "vehicle", f"AB{n:02d}CDE"),),
            )
        )
        accounts.append(
            SeedAccount(account_of(consumer), "consumer", CONSUMER_BALANCE, (SeedCard(consumer),))
        )
    return tuple(accounts)


def amount_due(answer: Message) -> int | None:
    """Field 54's amount due (type 04), None when the answer states none."""
    value = answer.fields.get("54")
    if value is None:
        return None
    due = [a.amount for a in decode_field54(value) if a.amount_type == AMOUNT_DUE]
    return due[0] if due else None


def approved(answer: Message) -> int:
    code = answer.fields.get("39")
    return int(answer.fields["4"]) if code in ("000", "002", "00", "10") else 0


@attrs.define
class SplitSwitch:
    config: SwitchConfig
    running: RunningSwitch
    bank: AcquirerSimulator
    kek: bytes
    tak: Any
    dialect: str = "ifsf"

    @property
    def port(self) -> int:
        return self.running.ports["pos"]

    @contextlib.asynccontextmanager
    async def terminal(self) -> AsyncIterator[Terminal]:
        stream = await trio.open_tcp_stream("127.0.0.1", self.port)
        try:
            yield Terminal(stream, get_dialect(self.dialect), T1, self.tak, kek=self.kek)
        finally:
            await stream.aclose()

    async def leg(self, term: Terminal, pan: str, amount: int, group: SplitGroup) -> Message:
        purchase = with_split_group(term.purchase(amount, pan=pan), group, term.dialect.family)
        return await term.exchange(purchase)

    def reversals_at(self, sim: AcquirerSimulator) -> int:
        return sim.count(mti="1420") + sim.count(mti="1421")

    def purchases_at(self, sim: AcquirerSimulator) -> int:
        return sim.count(mti="1200")

    async def balance(self, pan: str) -> int:
        """The available balance of the card's ledger account."""
        async with open_journal(self.config, node="reader") as journal:
            (rows,) = await journal.write(LedgerBalances(account_of(pan)))
        assert isinstance(rows, list) and rows, pan[-4:]
        return int(rows[0][4])

    async def postings(self, pan: str) -> list[tuple[str, int]]:
        """(kind, amount) of every posting of the card's account since it was funded:
        what the ledger did for that card's requests (empty: it was never asked)."""
        async with open_journal(self.config, node="reader") as journal:
            (rows,) = await journal.write(LedgerStatement(account_of(pan), 0.0, time.time() + 60))
        assert isinstance(rows, list)
        return [(str(r[2]), int(str(r[5]))) for r in rows if r[2] not in ("topup", "adjustment")]


def _config(
    data_dir: Path, bank_port: int, database: str | None, dialect: str, node: str = "split-node"
) -> SwitchConfig:
    bank = {
        "name": "bank",
        "host": "127.0.0.1",
        "port": bank_port,
        "dialect": "ifsf",
        "mac": False,
        "sign_on": False,
        "echo_interval_s": 0.0,
        "request_timeout_s": 2.0,
        "reconnect_initial_s": 0.05,
        "reconnect_max_s": 0.5,
    }
    doc: dict[str, Any] = {
        "node": node,
        "data_dir": str(data_dir),
        "default_route": "bank",
        "logging": {"level": "warning", "format": "json"},
        "metrics": {"host": "127.0.0.1", "port": _unused_port()},
        "listeners": [
            {
                "name": "pos",
                "host": "127.0.0.1",
                "port": 0,
                "dialect": dialect,
                "terminal_group": "site",
            }
        ],
        "terminal_groups": [{"name": "site", "terminals": "registry", "mac_required": True}],
        "acquirers": [{"name": LEDGER, "kind": "ledger"}, bank],
        "routes": [
            {"prefixes": ["7077"], "acquirer": LEDGER, "tender": "fleet"},
            {"prefixes": ["7080"], "acquirer": LEDGER, "tender": "consumer"},
        ],
        "saf": {"backoff_initial_s": 0.2, "backoff_max_s": 1.0},
    }
    if database is not None:
        doc["database"] = database
    return parse_config(doc, source="test")


@contextlib.asynccontextmanager
async def split_switch(
    data_dir: Path,
    database: str | None = None,
    dialect: str = "ifsf",
    cards: Iterable[int] = CARDS,
) -> AsyncIterator[SplitSwitch]:
    """`dialect`: the terminals' listener; the bank link is always ifsf. `cards`: the
    n of the fleet_pan(n) and consumer_pan(n) the ledger holds accounts for."""
    lmk = Lmk.generate()
    store = KeyStore.init(data_dir, lmk=lmk)
    ceremony = store.add_terminal(T1)
    tak = install_key_change(ceremony.clear_kek, ceremony.payload).mac_key()
    store.close()
    slow = Rule("slow", "delay", amount_min=SLOW, amount_max=SLOW, delay=Delay(1.0, 1.0))
    bank = AcquirerSimulator(simple_config([slow, Rule("bank", "approve")]))
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        bank_port = await nursery.start(bank.run)
        config = _config(data_dir, bank_port, database, dialect)
        async with open_journal(config) as journal:
            await seed_ledger(journal, ledger_card_key(lmk), ledger_accounts(cards), time.time())
        running = await nursery.start(functools.partial(run_switch, config, stop=stop, lmk=lmk))
        with trio.fail_after(5):  # the bank link connected
            while bank.open_connections < 1:
                await trio.sleep(0.01)
        try:
            yield SplitSwitch(config, running, bank, ceremony.clear_kek, tak, dialect)
        finally:
            stop.set()
            with trio.move_on_after(10):
                while any("run_switch" in t.name for t in nursery.child_tasks):
                    await trio.sleep(0.02)
            nursery.cancel_scope.cancel()


@attrs.define
class SplitCluster:
    """Switch nodes on one PostgreSQL database (journal, key store and ledger), one
    bank simulator that every node links to."""

    nodes: dict[str, SplitSwitch]
    bank: AcquirerSimulator


@contextlib.asynccontextmanager
async def split_cluster(
    tmp_path: Path, dsn: str, nodes: tuple[str, ...] = ("a", "b"), cards: Iterable[int] = CARDS
) -> AsyncIterator[SplitCluster]:
    lmk = Lmk.generate()
    store = KeyStore.init(tmp_path / "keys", dsn=dsn, lmk=lmk)
    ceremony = store.add_terminal(T1)
    tak = install_key_change(ceremony.clear_kek, ceremony.payload).mac_key()
    store.close()
    slow = Rule("slow", "delay", amount_min=SLOW, amount_max=SLOW, delay=Delay(1.0, 1.0))
    bank = AcquirerSimulator(simple_config([slow, Rule("bank", "approve")]))
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        bank_port = await nursery.start(bank.run)
        configs = {n: _config(tmp_path / n, bank_port, dsn, "ifsf", f"node-{n}") for n in nodes}
        async with open_journal(configs[nodes[0]]) as journal:
            await seed_ledger(journal, ledger_card_key(lmk), ledger_accounts(cards), time.time())
        switches: dict[str, SplitSwitch] = {}
        for name, config in configs.items():
            running = await nursery.start(functools.partial(run_switch, config, stop=stop, lmk=lmk))
            switches[name] = SplitSwitch(config, running, bank, ceremony.clear_kek, tak)
        with trio.fail_after(5):  # every node's bank link connected
            while bank.open_connections < len(nodes):
                await trio.sleep(0.01)
        try:
            yield SplitCluster(switches, bank)
        finally:
            stop.set()
            with trio.move_on_after(10):
                while any("run_switch" in t.name for t in nursery.child_tasks):
                    await trio.sleep(0.02)
            nursery.cancel_scope.cancel()
