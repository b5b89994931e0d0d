"""A switch with two ISO 8583 acquirer simulators for the split-tender tests.

`fleet` holds per-card balances (fleet cards 150.00, consumer cards 30.00) and
approves up to them, as the in-house ledger will; `bank` approves everything (an
amount of 7.77 after a second). The routes give 7077 fleet and 7080 consumer
cards to `fleet`, everything else to `bank` as bank cards. Real sockets, a real
SQLite journal (or PostgreSQL), the real key store; the terminal is the tests'
(harness.Terminal).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import AsyncIterator
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
from forecourt.simulators.rules import AccountConfig, Delay, Rule
from forecourt.switch.config import SwitchConfig, parse_config
from forecourt.switch.server import RunningSwitch, run_switch

from tests.switch.harness import Terminal, _unused_port

T1 = "T0000001"
FLEET_BALANCE, CONSUMER_BALANCE = 15000, 3000
BANK_PAN = "4761739001010010"
SLOW = 777  # the bank answers this amount after 1 s


def fleet_pan(n: int) -> str:
    return f"7077{n:012d}"


def consumer_pan(n: int) -> str:
    return f"7080{n:012d}"


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
    fleet: AcquirerSimulator
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


def _config(
    data_dir: Path, fleet_port: int, bank_port: int, database: str | None, dialect: str
) -> SwitchConfig:
    def acquirer(name: str, port: int) -> dict[str, Any]:
        return {
            "name": name,
            "host": "127.0.0.1",
            "port": port,
            "dialect": "ifsf",
            "mac": False,
            "sign_on": False,
            "echo_interval_s": 0.0,
            "request_timeout_s": 2.0,
            "reconnect_initial_s": 0.05,
            "reconnect_max_s": 0.5,
        }

    doc: dict[str, Any] = {
        "node": "split-node",
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
        "acquirers": [acquirer("fleet", fleet_port), acquirer("bank", bank_port)],
        "routes": [
            {"prefixes": ["7077"], "acquirer": "fleet", "tender": "fleet"},
            {"prefixes": ["7080"], "acquirer": "fleet", "tender": "consumer"},
        ],
        "saf": {"backoff_initial_s": 0.2, "backoff_max_s": 1.0},
    }
    if database is not None:
        doc["database"] = database
    return parse_config(doc, source="test")


@contextlib.asynccontextmanager
async def split_switch(
    data_dir: Path, database: str | None = None, dialect: str = "ifsf"
) -> AsyncIterator[SplitSwitch]:
    """`dialect`: the terminals' listener; the acquirer links are always ifsf."""
    lmk = Lmk.generate()
    store = KeyStore.init(data_dir, lmk=lmk)
    ceremony = store.add_terminal(T1)
    tak = install_key_change(ceremony.clear_kek, ceremony.payload).mac_key()
    store.close()
    fleet = AcquirerSimulator(
        simple_config(
            [
                Rule("fleet", "partial", pan_prefixes=("7077",), account="fleet"),
                Rule("consumer", "partial", pan_prefixes=("7080",), account="consumer"),
            ],
            [
                AccountConfig("fleet", FLEET_BALANCE, per_card=True),
                AccountConfig("consumer", CONSUMER_BALANCE, per_card=True),
            ],
        )
    )
    slow = Rule("slow", "delay", amount_min=SLOW, amount_max=SLOW, delay=Delay(1.0, 1.0))
    bank = AcquirerSimulator(simple_config([slow, Rule("bank", "approve")]))
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        fleet_port = await nursery.start(fleet.run)
        bank_port = await nursery.start(bank.run)
        config = _config(data_dir, fleet_port, bank_port, database, dialect)
        running = await nursery.start(functools.partial(run_switch, config, stop=stop, lmk=lmk))
        with trio.fail_after(5):  # both links connected
            while fleet.open_connections < 1 or bank.open_connections < 1:
                await trio.sleep(0.01)
        try:
            yield SplitSwitch(config, running, fleet, bank, ceremony.clear_kek, tak, dialect)
        finally:
            stop.set()
            with trio.move_on_after(10):
                while any("run_switch" in t.name for t in nursery.child_tasks):
                    await trio.sleep(0.02)
            nursery.cancel_scope.cancel()
