"""kill -9 of a switch during ledger debits loses no posting and doubles none.

A real `forecourt serve` process authorises fleet purchases from its own ledger
(SQLite journal) for 20 terminals, each sending one purchase after another, and is
killed while they are in flight. A second process on the same data dir recovers;
the terminals reverse what they never heard an answer to, as terminals do. Then the
account's balance is exactly its opening balance less what the terminals were told,
each told approval is one hold and one capture, and no reference is taken twice.
"""

from __future__ import annotations

import random
import sqlite3
import time
from functools import partial
from pathlib import Path

import pytest
import trio
from forecourt.codecs.dialect import get_dialect
from forecourt.codecs.masking import mask_pan
from forecourt.codecs.message import Message
from forecourt.keys.lmk import Lmk
from forecourt.keys.store import KeyStore
from forecourt.switch.authorisers.ledger import LedgerAuthoriser, ledger_card_key
from forecourt.switch.authorisers.ledger.metrics import LedgerMetrics
from forecourt.switch.config_ledger import LedgerSettings
from forecourt.switch.demo_ledger import SeedAccount, SeedCard, seed_ledger
from forecourt.switch.flows.base import PARKED_S
from forecourt.switch.journal import AddEvent, Event, InsertTransaction, new_txn_id, open_journal
from forecourt.switch.ledger import LedgerBalances
from forecourt.switch.metrics import SwitchMetrics
from forecourt.switch.reversal import ReversalReason, saf_payload, switch_reversal
from forecourt.switch.server import run_switch, saf_data_key
from forecourt.switch.transaction import TxnRecord, journal_row

from tests import crash_harness as crash
from tests.switch.harness import Terminal, _unused_port
from tests.switch.ledger_switch import ledger_config, seed_served_ledger

pytestmark = pytest.mark.slow

TERMINALS = [f"T{n:07d}" for n in range(1, 21)]
PAN = "7077001234567890"
OPENING = 1_000_000
KILL_AFTER_S = 1.5


def _config(data_dir: Path, lmk: Path, port: int) -> str:
    return crash.serve_config(
        data_dir, port, node="ledger-crash", terminals=TERMINALS, default_route="ledger",
        lmk_file=lmk, saf={"backoff_initial_s": 0.2, "backoff_max_s": 1.0}, max_in_flight=2,
        acquirers=crash.acquirer(name="ledger", kind="ledger"),
    )  # fmt: skip


async def _debits(
    port: int, terminal_id: str, sent: dict[str, Message], told: dict[str, Message], seed: int
) -> None:
    """One terminal: a purchase, its answer, the next; until the switch goes."""
    rng = random.Random(seed)
    async with crash.until_killed(port) as stream:
        t = Terminal(stream, get_dialect("ifsf"), terminal_id, None)
        while True:
            purchase = t.purchase(rng.randint(100, 2000), pan=PAN)
            key = f"{terminal_id}/{purchase.fields['11']}"
            sent[key] = purchase
            await t.send(purchase)
            told[key] = await t.receive(timeout=10.0)


async def test_kill_9_during_ledger_debits(tmp_path: Path) -> None:
    data_dir, lmk_file = tmp_path / "data", tmp_path / "lmk.key"
    crash.init_keys(data_dir, lmk_file)
    port = _unused_port()
    config_path = tmp_path / "forecourt.toml"
    config_path.write_text(_config(data_dir, lmk_file, port))
    account = SeedAccount("F1", "fleet", OPENING, (SeedCard(PAN, "vehicle", "AB12CDE"),))
    await seed_served_ledger(config_path, lmk_file, account)

    sent: dict[str, Message] = {}
    told: dict[str, Message] = {}
    async with crash.serving(config_path, log=tmp_path / "first.log") as first:
        await crash.kill_9_under_load(
            first,
            [partial(_debits, port, t, sent, told, i) for i, t in enumerate(TERMINALS)],
            once=lambda: len(told) >= 20,  # the switch is up and answering
            after_s=KILL_AFTER_S,
        )
    unanswered = [m for k, m in sent.items() if k not in told]
    assert unanswered, "nothing was in flight at the kill"

    async with crash.serving(config_path, log=tmp_path / "second.log") as second:
        by_terminal: dict[str, list[Message]] = {}
        for m in unanswered:
            by_terminal.setdefault(m.fields["41"], []).append(m)
        for terminal_id, originals in by_terminal.items():
            async with await crash.connect(port) as stream:
                t = Terminal(stream, get_dialect("ifsf"), terminal_id, None)
                for original in originals:  # the terminal reverses what it never heard
                    answer = await t.exchange(t.reversal(original), timeout=10.0)
                    assert answer.fields["39"] in ("400", "914"), answer.fields["39"]
        await crash.drained(data_dir / "journal.db", timeout=30.0)
        assert await crash.stop(second) == 0

    approved = {k: int(a.fields["4"]) for k, a in told.items() if a.fields["39"] in ("000", "002")}
    db = sqlite3.connect(data_dir / "journal.db")
    (available, held, settled) = db.execute(
        "SELECT available, held, settled FROM ledger_accounts WHERE account_id = 'F1'"
    ).fetchone()
    (restored,) = db.execute(
        "SELECT count(*) FROM ledger_postings WHERE kind = 'reversal'"
    ).fetchone()
    (tombstones,) = db.execute(
        "SELECT count(*) FROM ledger_txns WHERE kind = 'tombstone'"
    ).fetchone()
    print(
        f"sent {len(sent)}, told {len(told)}, approved {len(approved)}, left {available}, "
        f"debits reversed after the restart {restored}, reversed before the ledger saw them "
        f"{tombstones}"
    )
    assert held == 0
    assert available == OPENING - sum(approved.values()) == OPENING - settled
    # each reference taken at most once: one hold (and its capture) per request
    doubled = db.execute(
        "SELECT reference FROM ledger_postings WHERE kind = 'hold' "
        "GROUP BY reference HAVING count(*) > 1"
    ).fetchall()
    assert doubled == []
    assert len(approved) > 100


async def test_a_debit_whose_answer_was_never_journalled_is_given_back(tmp_path: Path) -> None:
    """The window kill -9 must not lose money in, made certain: the request and its
    parked reversal are journalled (as `forward` does), the ledger debits, and the
    process ends before the answer is written. The next start reverses it."""

    data_dir = tmp_path / "data"
    lmk = Lmk.generate()
    KeyStore.init(data_dir, lmk=lmk).close()
    config = ledger_config(data_dir)
    card_key = ledger_card_key(lmk)
    account = SeedAccount("F1", "fleet", 15000, (SeedCard(PAN, "vehicle", "AB12CDE"),))

    async def balance() -> int:
        async with open_journal(config) as journal:
            (rows,) = await journal.write(LedgerBalances("F1"))
            assert isinstance(rows, list)
            return int(rows[0][4])

    async with open_journal(config, saf_key=saf_data_key(lmk), node=config.node) as journal:
        await seed_ledger(journal, card_key, [account], time.time())
        ledger = LedgerAuthoriser(
            "ledger",
            LedgerSettings(),
            journal,
            card_key,
            LedgerMetrics.on(SwitchMetrics().registry),
        )
        t = Terminal(None, get_dialect("ifsf"), "T0000001", None)  # type: ignore[arg-type]
        request = t.purchase(4000, pan=PAN)
        record = TxnRecord(new_txn_id(), "T0000001", request.fields["11"], "2", "1200",
                           mask_pan(PAN), "000000004000", "000000", time.time())  # fmt: skip

        async def before_send(sent: Message) -> None:
            record.state, record.route, record.forwarded_at = "forwarded", "ledger", time.time()
            record.acquirer_stan = sent.fields["11"]
            reversal = switch_reversal(sent, sent.fields["11"], ledger.family,
                                       ReversalReason.HOST_TIMEOUT)  # fmt: skip
            await journal.write(
                InsertTransaction(journal_row(record, config.node)),
                AddEvent(Event(record.txn_id, time.time(), "forwarded", "ledger")),
                journal.saf_enqueue_op(
                    record.txn_id, "ledger", reversal.mti, saf_payload(reversal),
                    next_attempt_at=time.time() + PARKED_S,
                ),
            )  # fmt: skip

        answer = await ledger.authorise(request, before_send=before_send)
        assert answer.message.fields["39"] == "000"
    assert await balance() == 11000  # debited; the terminal never heard it

    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        await nursery.start(lambda **kw: run_switch(config, stop=stop, lmk=lmk, **kw))
        with trio.fail_after(10):
            while await balance() != 15000:
                await trio.sleep(0.05)
        stop.set()
    db = sqlite3.connect(data_dir / "journal.db")
    assert db.execute("SELECT state FROM transactions").fetchall() == [("reversed",)]
    (restored,) = db.execute(
        "SELECT sum(amount) FROM ledger_postings WHERE kind = 'reversal'"
    ).fetchone()
    assert restored == 4000
