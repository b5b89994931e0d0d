"""The IC fuel card flows end to end: a real switch on real sockets and an SQLite
file, terminals MACing under their TAKs, the card's account in the ledger.

A card check, a grey-lock and its repeat, the result, a second grey-lock left open
(the card pulled at the pump) and unlocked at another terminal, an unknown card and
a card with nothing to unlock declined, a bad TAC refused, a stale record flagged
and shown in the metrics; IC card messages unsupported when `[ic_cards]` is off.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest
import trio
from forecourt.codecs.amounts import decode_field54
from forecourt.codecs.field48 import decode_field48
from forecourt.simulators.ic_card_templates import simulated_card_tac
from forecourt.switch.authorisers.ledger import ledger_card_key
from forecourt.switch.grey import CardFacts, GreyLock
from forecourt.switch.journal import open_journal
from forecourt.switch.ledger import card_reference

from tests.crash_harness import FORECOURT
from tests.grey.grey_switch import (
    BLOCKED_PAN,
    OPENING,
    PAN,
    UNKNOWN_PAN,
    grey_switch,
)
from tests.switch.test_metrics import get

pytestmark = pytest.mark.slow


def _balance(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        (available,) = conn.execute(
            "SELECT available FROM ledger_accounts WHERE account_id = 'IC-1'"
        ).fetchone()
    return int(available)


async def test_grey_lock_result_and_unlock_at_another_terminal(tmp_path: Path) -> None:
    db = tmp_path / "journal.db"
    async with grey_switch(tmp_path) as sw:
        async with sw.terminal("T0000001") as pump, sw.terminal("T0000002") as indoor:
            # card check: status and balance, nothing debited
            check = await pump.exchange(pump.ic("ic_card_check"))
            assert (check.mti, check.fields["39"]) == ("1614", "000")
            assert decode_field48(check.fields["48"])[54] == "A"
            (balance,) = decode_field54(check.fields["54"])
            assert balance.amount == OPENING
            assert "2" not in check.fields and "64" in check.fields  # no card back; MAC'd
            blocked = await pump.exchange(pump.ic("ic_card_check", BLOCKED_PAN))
            assert blocked.fields["39"] == "104"
            assert decode_field48(blocked.fields["48"])[54] == "B"

            # fuelling 1: grey-lock, the advice repeated, the result
            lock = pump.debit("grey_lock", 7, 0)
            first = await pump.exchange(lock)
            again = await pump.exchange(lock.with_fields({11: pump.next_stan()}))
            assert (first.mti, first.fields["39"], again.fields["39"]) == ("1634", "000", "000")
            assert decode_field48(first.fields["48"])[55] == "O"
            assert decode_field48(again.fields["48"]) == decode_field48(first.fields["48"])
            done = await pump.exchange(pump.debit("grey_result", 7, 4250))
            assert done.fields["39"] == "000"
            assert decode_field48(done.fields["48"])[55] == "C"
            repeat = await pump.exchange(pump.debit("grey_result", 7, 4250))
            assert repeat.fields["39"] == "000"
            assert _balance(db) == OPENING - 4250  # debited once

            # fuelling 2: the card pulled after the grey-lock for 30.00 at pump 3
            pulled = await pump.exchange(pump.debit("grey_lock", 8, 3000))
            assert pulled.fields["39"] == "000"
            assert _balance(db) == OPENING - 4250  # nothing until the record closes

            # next use, at another terminal: the unlock completes the debit
            unlock = indoor.ic("grey_unlock")
            answer = await indoor.exchange(unlock)
            assert (answer.mti, answer.fields["39"], answer.fields["4"]) == (
                "1614", "000", "000000003000"
            )  # fmt: skip
            data = decode_field48(answer.fields["48"])
            assert data[50] == "00008" and data[52] == "0302"
            assert data[51] == simulated_card_tac(PAN, 8, 3000, "T0000001")
            assert data[53][:21] == "C000000003000T0000001"
            assert data[55] == "C"
            assert _balance(db) == OPENING - 7250
            # the answer lost: the unlock repeated with the ATC answers the same, once
            repeat = await indoor.exchange(indoor.ic("grey_unlock", elements={50: "00008"}))
            assert repeat.fields["4"] == "000000003000" and repeat.fields["39"] == "000"
            assert _balance(db) == OPENING - 7250
            # nothing left to unlock; an unknown card; a bad TAC
            nothing = await indoor.exchange(indoor.ic("grey_unlock"))
            assert nothing.fields["39"] == "914"
            unknown = await indoor.exchange(indoor.ic("grey_unlock", UNKNOWN_PAN))
            assert unknown.fields["39"] == "118"
            forged = pump.debit("grey_lock", 9, 1000).with_fields({4: "000000000001"})
            assert (await pump.exchange(forged)).fields["39"] == "129"
            malformed = pump.ic("grey_lock").with_fields({48: None})  # no ATC, TAC, pump
            assert (await pump.exchange(malformed)).fields["39"] == "904"
            # a grey lock of zero, unlocked: cleared, nothing debited
            await pump.exchange(pump.debit("grey_lock", 10, 0))
            cleared = await indoor.exchange(indoor.ic("grey_unlock"))
            assert decode_field48(cleared.fields["48"])[53][0] == "X"
            assert cleared.fields["4"] == "000000000000"
        with sqlite3.connect(db) as conn:
            rows = conn.execute(
                "SELECT atc, state, closed_by, debited, closing_terminal, terminal_id "
                "FROM grey_records ORDER BY atc"
            ).fetchall()
            pans = conn.execute("SELECT count(*) FROM grey_records WHERE card_ref = ?",
                                (PAN,)).fetchone()  # fmt: skip
        assert rows == [
            (7, "completed", "result", 4250, "T0000001", "T0000001"),
            (8, "completed", "unlock", 3000, "T0000002", "T0000001"),
            (10, "cleared", "unlock", 0, "T0000002", "T0000001"),
        ]
        assert pans == (0,)  # the card reference, never the PAN
        assert sw.running.metrics_port is not None
        _, _, body = await get(sw.running.metrics_port, "/metrics")
        assert b'forecourt_grey_unlocks_total{outcome="complete"} 1.0' in body
        assert b'forecourt_grey_unlocks_total{outcome="repeat"} 1.0' in body
        assert b"forecourt_grey_tac_failures_total 1.0" in body


async def test_a_record_left_open_is_flagged_and_counted(tmp_path: Path) -> None:
    async with grey_switch(tmp_path, check_interval_s=0.1, max_age_s=60.0) as sw:
        async with open_journal(sw.config) as journal:  # a lock recorded two minutes ago
            card = card_reference(ledger_card_key(sw.keys.lmk), PAN)
            facts = CardFacts(card, 3, 500, "978", "T0000003", "01", "01", "261201100000",
                              "00000000", "grey-a", time.time() - 120)  # fmt: skip
            await journal.write(GreyLock(facts))
        assert sw.running.metrics_port is not None
        with trio.fail_after(5):
            while True:
                _, _, body = await get(sw.running.metrics_port, "/metrics")
                if b'forecourt_grey_records{state="flagged"} 1.0' in body:
                    break
                await trio.sleep(0.05)
        assert b'forecourt_grey_records{state="open"} 0.0' in body
        shown = await trio.run_process(
            [*FORECOURT, "journal", "grey", "--data-dir", str(tmp_path), "--state", "flagged"],
            capture_stdout=True,
        )
        out = shown.stdout.decode()
        assert "FLAGGED" in out and "709000******0001" in out and PAN not in out
        assert "1 flagged for manual handling" in out
        async with sw.terminal("T0000002") as indoor:  # still unlockable, once
            answer = await indoor.exchange(indoor.ic("grey_unlock"))
            assert answer.fields["4"] == "000000000500"
    with sqlite3.connect(tmp_path / "journal.db") as conn:
        assert conn.execute(
            "SELECT state, flagged_at IS NOT NULL FROM grey_records"
        ).fetchall() == [("completed", 1)]


async def test_ic_card_messages_unsupported_when_off_or_in_1987(tmp_path: Path) -> None:
    async with grey_switch(tmp_path / "off", enabled=False) as sw, sw.terminal() as pump:
        assert (await pump.exchange(pump.ic("ic_card_check"))).fields["39"] == "115"
        assert (await pump.exchange(pump.debit("grey_lock", 1, 0))).fields["39"] == "115"
    async with grey_switch(tmp_path / "87", dialect="iso87ascii") as sw, sw.terminal() as pump:
        request = pump.ic("ic_card_check").with_fields(
            {24: None, 48: None, 12: "120000", 13: "1201"}, mti="0600"
        )
        answer = await pump.exchange(request)
        assert (answer.mti, answer.fields["39"]) == ("0610", "40")
