"""kill -9 of a switch answering grey-lock notifications: nothing lost, nothing doubled.

A real `forecourt serve` process (SQLite journal) takes grey-lock notifications from
eight pump terminals, each one after another for a card transaction of its own, and
is killed while they are in flight. A second process on the same data directory
takes the advices the terminals never heard answered, repeated as terminals do,
and some answered ones again. Then every card transaction has exactly one grey
record, and unlocks at another terminal close each one once, debiting its amount
once: the account is its opening balance less the recorded amounts.
"""

from __future__ import annotations

import random
import sqlite3
from functools import partial
from pathlib import Path

import pytest
import trio
from forecourt.codecs.dialect import get_dialect
from forecourt.codecs.field48 import decode_field48
from forecourt.codecs.message import Message
from forecourt.switch.demo_ledger import SeedAccount, SeedCard

from tests import crash_harness as crash
from tests.grey.grey_switch import PAN, IcTerminal
from tests.switch.harness import _unused_port
from tests.switch.ledger_switch import seed_served_ledger

pytestmark = pytest.mark.slow

PUMPS = [f"T{n:07d}" for n in range(1, 9)]
INDOOR = "T0000099"
OPENING = 10_000_000
KILL_AFTER_S = 0.3


IC_CARDS = """
[ic_cards]
enabled = true
acquirer = "ledger"
tac_check = "test"
"""


def _config(data_dir: Path, lmk: Path, port: int) -> str:
    return crash.serve_config(
        data_dir, port, node="grey-crash", terminals=[*PUMPS, INDOOR], default_route="ledger",
        lmk_file=lmk, max_in_flight=2,
        acquirers=crash.acquirer(name="ledger", kind="ledger") + IC_CARDS,
    )  # fmt: skip


def _terminal(stream: trio.SocketStream, terminal_id: str) -> IcTerminal:
    return IcTerminal(stream, get_dialect("ifsf"), terminal_id, None)


async def _locks(
    port: int, n: int, sent: dict[int, Message], told: dict[int, Message], seed: int
) -> None:
    """One pump: a grey-lock notification for ATC n*1000 + k, its answer, the next."""
    rng = random.Random(seed)
    async with crash.until_killed(port) as stream:
        t = _terminal(stream, PUMPS[n])
        for k in range(1000):
            atc = n * 1000 + k
            sent[atc] = t.debit("grey_lock", atc, rng.randint(1, 5000))
            await t.send(sent[atc])
            told[atc] = await t.receive(timeout=10.0)


async def test_kill_9_while_answering_grey_locks(tmp_path: Path) -> None:
    data_dir, lmk_file = tmp_path / "data", tmp_path / "lmk.key"
    crash.init_keys(data_dir, lmk_file)
    port = _unused_port()
    config_path = tmp_path / "forecourt.toml"
    config_path.write_text(_config(data_dir, lmk_file, port))
    account = SeedAccount("IC-1", "consumer", OPENING, (SeedCard(PAN),))
    await seed_served_ledger(config_path, lmk_file, account)

    sent: dict[int, Message] = {}
    told: dict[int, Message] = {}
    async with crash.serving(config_path, log=tmp_path / "first.log") as first:
        await crash.kill_9_under_load(
            first,
            [partial(_locks, port, n, sent, told, n) for n in range(len(PUMPS))],
            once=lambda: len(told) >= 20,  # the switch is up and answering
            after_s=KILL_AFTER_S,
        )
    unanswered = sorted(atc for atc in sent if atc not in told)
    assert unanswered, "nothing was in flight at the kill"
    assert all(a.fields["39"] == "000" for a in told.values())

    async with crash.serving(config_path, log=tmp_path / "second.log") as second:
        again = unanswered + random.Random(1).sample(sorted(told), 20)
        for atc in again:  # the pump repeats its advice until it is answered
            async with await crash.connect(port) as stream:
                t = _terminal(stream, PUMPS[atc // 1000])
                repeat = sent[atc].with_fields({11: t.next_stan()})
                assert (await t.exchange(repeat, timeout=10.0)).fields["39"] == "000"
        with sqlite3.connect(data_dir / "journal.db") as db:
            rows = dict(db.execute("SELECT atc, amount FROM grey_records").fetchall())
        assert rows == {atc: int(m.fields["4"]) for atc, m in sent.items()}
        # each record unlocked once at the indoor terminal, then nothing is left
        async with await crash.connect(port) as stream:
            indoor = _terminal(stream, INDOOR)
            unlocked: dict[int, int] = {}
            while True:
                answer = await indoor.exchange(indoor.ic("grey_unlock"), timeout=10.0)
                if answer.fields["39"] == "914":
                    break
                assert answer.fields["39"] == "000"
                atc = _atc(answer)
                assert atc not in unlocked
                unlocked[atc] = int(answer.fields["4"])
            # an unlock repeated with the ATC answers the same and debits nothing
            atc = next(iter(unlocked))
            repeat = indoor.ic("grey_unlock", elements={50: f"{atc:05d}"})
            assert int((await indoor.exchange(repeat)).fields["4"]) == unlocked[atc]
        assert unlocked == rows
        assert await crash.stop(second) == 0

    with sqlite3.connect(data_dir / "journal.db") as db:
        (available, held) = db.execute(
            "SELECT available, held FROM ledger_accounts WHERE account_id = 'IC-1'"
        ).fetchone()
        doubled = db.execute(
            "SELECT reference FROM ledger_postings WHERE kind = 'hold' "
            "GROUP BY reference HAVING count(*) > 1"
        ).fetchall()
        states = db.execute("SELECT state, count(*) FROM grey_records GROUP BY state").fetchall()
    print(f"sent {len(sent)}, answered before the kill {len(told)}, unanswered {len(unanswered)}")
    assert held == 0 and doubled == []
    assert available == OPENING - sum(rows.values())
    assert dict(states) == {"completed": len(rows)}


def _atc(answer: Message) -> int:
    value = decode_field48(answer.fields["48"])[50]
    assert isinstance(value, str)
    return int(value)
