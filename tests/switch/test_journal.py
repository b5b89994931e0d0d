"""Journal: group commit, durability before acknowledgement, SAF, totals, the PAN guard.

Backend-level tests run against both backends (`target`: a SQLite file, or the DSN of
a fresh PostgreSQL database, marked `postgres`); SQLite-only ones take `tmp_path`.
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing
from forecourt.switch.config import parse_config
from forecourt.switch.journal import (
    MIGRATIONS,
    Journal,
    JournalBackend,
    JournalClosed,
    JournalError,
    JournalRow,
    PanRefused,
    SafState,
    SqliteJournal,
    TxnState,
    UnknownTransaction,
    new_txn_id,
    open_backend,
    open_journal,
)
from forecourt.switch.metrics import SwitchMetrics

KEY = bytes(range(32))
PAN_MESSAGE = b"0420...164111111111111111..."  # stands for an encoded reversal with field 2


def row(n: int = 1, **changes: Any) -> JournalRow:
    values: dict[str, Any] = {
        "txn_id": new_txn_id(),
        "node": "n1",
        "terminal_id": "T0000001",
        "stan": f"{n:06d}",
        "mti_class": "2",
        "request_mti": "1200",
        "received_at": time.time(),
        "amount": 5000,
        "currency": "978",
        "masked_pan": "411111******1111",
        "processing_code": "000000",
    }
    values.update(changes)
    return JournalRow(**values)


Target = Path | str  # a SQLite file or a PostgreSQL DSN


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Target:
    if request.param == "sqlite":
        return tmp_path / "j.db"
    dsn: str = request.getfixturevalue("postgres_db")
    return dsn


def count(db: Target, sql: str = "SELECT count(*) FROM transactions") -> int:
    if isinstance(db, str):
        import psycopg

        with psycopg.connect(db) as pg:
            got = pg.execute(sql).fetchone()  # type: ignore[call-overload]
            assert got is not None
            return int(got[0])
    conn = sqlite3.connect(db)
    try:
        return int(conn.execute(sql).fetchone()[0])
    finally:
        conn.close()


def payloads(db: Target) -> list[bytes]:
    if isinstance(db, str):
        import psycopg

        with psycopg.connect(db) as pg:
            return [bytes(p) for (p,) in pg.execute("SELECT payload FROM saf ORDER BY id")]
    conn = sqlite3.connect(db)
    try:
        return [bytes(p) for (p,) in conn.execute("SELECT payload FROM saf ORDER BY id")]
    finally:
        conn.close()


async def test_schema_and_wal(tmp_path: Path) -> None:
    db = tmp_path / "journal.db"
    async with open_journal(db) as journal:
        assert journal.backend.schema_version() == MIGRATIONS[-1][0]
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"transactions", "events", "saf", "shifts", "schema_version"} <= tables
    indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    assert {"transactions_terminal_key", "transactions_state"} <= indexes
    conn.close()
    SqliteJournal(db).close()  # reopening migrates nothing twice
    assert count(db, "SELECT count(*) FROM schema_version") == len(MIGRATIONS)


async def test_opens_from_config(tmp_path: Path) -> None:
    config = parse_config({"data_dir": str(tmp_path / "d"), "node": "fc1"})
    async with open_journal(config) as journal:
        assert journal.node == "fc1"
        await journal.record_received(row())
    assert count(tmp_path / "d" / "journal.db") == 1


async def test_hot_path_two_writes_and_reads(target: Target) -> None:
    async with open_journal(target) as journal:
        r = row(
            42,
            state=TxnState.FORWARDED,
            route="bank",
            acquirer_stan="000777",
            forwarded_at=time.time(),
            shift_id="S1",
        )
        await journal.record_received(r)  # write 1: received + forwarded
        await journal.update(  # write 2: answered
            r.txn_id,
            state=TxnState.APPROVED,
            response_mti="1210",
            action_code="000",
            approved_amount=5000,
            rrn="512312345678",
            auth_code="A1B2C3",
            answered_at=time.time(),
            host_ms=120.5,
            switch_ms=0.4,
            response_raw=b"\x12\x10answer",
            flags=("partial_capable",),
        )
        got = await journal.get(r.txn_id)
        assert got is not None
        assert got.state == "approved" and got.action_code == "000"
        assert got.response_raw == b"\x12\x10answer" and got.flags == ("partial_capable",)
        assert got.route == "bank" and got.host_ms == 120.5
        assert await journal.find_by_terminal_key("2", "T0000001", "000042") == got
        assert await journal.find_by_terminal_key("1", "T0000001", "000042") is None
        events = await journal.events(r.txn_id)
        assert [e.kind for e in events] == ["forwarded", "approved"]
        assert events[1].detail is not None and '"action_code": "000"' in events[1].detail
        assert await journal.get("nope") is None


async def test_find_returns_the_latest_with_the_key(target: Target) -> None:
    async with open_journal(target) as journal:
        old = row(7, received_at=1000.0)
        new = row(7, received_at=2000.0)
        await journal.record_received(old)
        await journal.record_received(new)
        found = await journal.find_by_terminal_key("2", "T0000001", "000007")
        assert found is not None and found.txn_id == new.txn_id


async def test_list_and_recover(target: Target) -> None:
    async with open_journal(target) as journal:
        rows = [row(i, received_at=1000.0 + i) for i in range(5)]
        for r in rows:
            await journal.record_received(r)
        await journal.update(rows[0].txn_id, state=TxnState.APPROVED)
        await journal.update(rows[1].txn_id, state=TxnState.FORWARDED)
        await journal.record_received(row(9, terminal_id="T2", node="n2"))
        assert [x.stan for x in await journal.list(limit=3)][:1] == ["000009"]
        assert len(await journal.list(limit=100, terminal="T0000001")) == 5
        assert [x.txn_id for x in await journal.list(state="approved")] == [rows[0].txn_id]
        recovered = await journal.recover()
        assert len(recovered) == 5 and rows[0].txn_id not in {x.txn_id for x in recovered}
        assert [x.stan for x in await journal.recover(node="n2")] == ["000009"]


async def test_group_commit_500_concurrent_writers(target: Target) -> None:
    db = target
    async with open_journal(db) as journal:
        async with trio.open_nursery() as nursery:
            for i in range(500):
                nursery.start_soon(journal.record_received, row(i))
        commits = journal.commits
    assert count(db) == 500
    assert count(db, "SELECT count(*) FROM events") == 500
    assert commits < 50, commits  # many transactions per fsync


async def test_each_batch_is_reported_to_the_metrics(target: Target) -> None:
    metrics = SwitchMetrics()
    seen: list[tuple[int, float]] = []

    def on_batch(writes: int, seconds: float) -> None:
        seen.append((writes, seconds))
        metrics.journal_batch(writes, seconds)

    async with open_journal(target) as journal:
        journal.on_batch = on_batch
        async with trio.open_nursery() as nursery:
            for i in range(300):
                nursery.start_soon(journal.record_received, row(i))
        batches = journal.batches
    assert sum(w for w, _ in seen) == 300
    assert len(seen) == batches and all(s > 0 for _, s in seen)
    text = metrics.render().decode()
    assert f"forecourt_journal_commits_total {float(batches)}" in text
    assert "forecourt_journal_batch_writes_sum 300.0" in text
    assert f"forecourt_journal_commit_seconds_count {float(batches)}" in text


async def test_back_pressure_bounded_queue(target: Target) -> None:
    async with open_journal(target, max_pending=2, max_batch=4) as journal:
        async with trio.open_nursery() as nursery:
            for i in range(50):
                nursery.start_soon(journal.record_received, row(i))
            await trio.testing.wait_all_tasks_blocked()
            stats = journal._send.statistics()
            assert stats.current_buffer_used <= 2
            assert stats.tasks_waiting_send > 0  # callers wait instead of queueing more
        assert len(await journal.list(limit=100)) == 50
        assert journal.commits >= 50 // 4


async def test_nothing_acknowledged_when_the_commit_fails(target: Target) -> None:
    db = target
    async with open_journal(db) as journal:
        backend = journal.backend
        assert hasattr(backend, "before_commit")  # both backends have the test hook

        def disk_full() -> None:
            raise sqlite3.OperationalError("database or disk is full")

        backend.before_commit = disk_full
        outcomes: list[str] = []

        async def writer(i: int) -> None:
            try:
                await journal.record_received(row(i))
            except JournalError as exc:
                assert "nothing in the batch is durable" in str(exc)
                outcomes.append("error")
            else:
                outcomes.append("ok")

        async with trio.open_nursery() as nursery:
            for i in range(100):
                nursery.start_soon(writer, i)
        assert outcomes == ["error"] * 100
        backend.before_commit = None
        await journal.record_received(row(1000))  # the journal carries on
    assert count(db) == 1


async def test_one_bad_write_fails_alone_in_its_batch(target: Target) -> None:
    db = target
    async with open_journal(db) as journal:
        dup = row(1)
        await journal.record_received(dup)
        results: dict[int, str] = {}

        async def writer(i: int, r: JournalRow) -> None:
            try:
                await journal.record_received(r)
                results[i] = "ok"
            except JournalError:
                results[i] = "error"

        async def bad_update() -> None:
            try:
                await journal.update("missing", state=TxnState.APPROVED)
                results[-1] = "ok"
            except UnknownTransaction:
                results[-1] = "unknown"

        before = journal.commits
        async with trio.open_nursery() as nursery:
            for i in range(20):
                nursery.start_soon(writer, i, dup if i == 10 else row(100 + i))
            nursery.start_soon(bad_update)
        assert results[10] == "error" and results[-1] == "unknown"
        assert [results[i] for i in range(20) if i != 10] == ["ok"] * 19
        assert journal.commits - before < 21
    assert count(db) == 20
    # the failed write left no half: no event for the duplicate's second insert
    assert count(db, "SELECT count(*) FROM events") == 20


async def test_write_after_close(target: Target) -> None:
    async with open_journal(target) as journal:
        pass
    with pytest.raises(JournalClosed):
        await journal.record_received(row())


async def test_queued_writes_are_committed_on_close(target: Target) -> None:
    db = target
    async with trio.open_nursery() as outer, open_journal(db) as journal:
        for i in range(30):
            outer.start_soon(journal.record_received, row(i))
        await trio.testing.wait_all_tasks_blocked()
    assert count(db) == 30


async def test_cancelled_writer_fails_waiters_instead_of_hanging(target: Target) -> None:
    backend: JournalBackend = open_backend(target)
    journal = Journal(backend, node="n1")
    errors: list[BaseException] = []

    async def write_one() -> None:
        try:
            await journal.record_received(row())
        except JournalClosed as exc:
            errors.append(exc)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(write_one)
        await trio.testing.wait_all_tasks_blocked()
        with trio.CancelScope() as scope:
            scope.cancel()
            await journal.run_writer()
    backend.close()
    assert len(errors) == 1


@pytest.mark.parametrize(
    "changes",
    [
        {"masked_pan": "4111111111111111"},
        {"masked_pan": "41111111"},
        {"auth_code": "4111111111111111"},
        {"rrn": ";4111111111111111=2512101?"},
        {"flags": ("4111 1111 1111 1111",)},
    ],
)
async def test_pan_guard(target: Target, changes: dict[str, Any]) -> None:
    async with open_journal(target) as journal:
        with pytest.raises(PanRefused) as info:
            await journal.record_received(row(**changes))
        assert "4111111111111111" not in str(info.value)
        r = row()
        await journal.record_received(r)
        with pytest.raises(PanRefused):
            await journal.update(r.txn_id, **changes)
        with pytest.raises(JournalError, match="unknown or read-only"):
            await journal.update(r.txn_id, txn_id="other")
        with pytest.raises(PanRefused):
            await journal.add_event(r.txn_id, "note", "card 4111111111111111")
    assert count(target) == 1


def test_txn_ids_are_ordered_and_never_look_like_a_pan() -> None:
    ids = [new_txn_id() for _ in range(2000)]
    assert all(len(i) == 26 for i in ids) and len(set(ids)) == 2000
    from forecourt.switch.log import contains_pan

    assert not any(contains_pan(i) for i in ids)


# ----------------------------------------------------------------------- SAF


async def test_saf_lifecycle(target: Target) -> None:
    db = target
    async with open_journal(db, saf_key=KEY, node="n1") as journal:
        r = row()
        await journal.record_received(r)
        # time out + queue the reversal: one atomic write
        await journal.write(
            *journal.update_ops(r.txn_id, state=TxnState.REVERSAL_PENDING),
            journal.saf_enqueue_op(r.txn_id, "bank", "1420", PAN_MESSAGE, now=100.0),
        )
        second = await journal.saf_enqueue(r.txn_id, "fleet", "1220", b"advice", now=101.0)
        assert isinstance(second, int)
        stats = await journal.saf_stats()
        assert (stats.depth, stats.pending, stats.oldest_created_at) == (2, 2, 100.0)
        assert dict(stats.depth_by_link) == {"bank": 1, "fleet": 1}

        assert await journal.saf_claim(now=99.0) == []  # not due yet
        items = await journal.saf_claim(limit=1, lease_s=30.0, now=200.0, link="bank")
        assert len(items) == 1
        (item,) = items
        assert item.payload == PAN_MESSAGE and item.attempts == 1 and item.mti == "1420"
        assert "payload" not in repr(item)
        # claimed items are not handed out again until the lease runs out
        assert await journal.saf_claim(now=210.0, link="bank") == []
        again = await journal.saf_claim(now=231.0, link="bank")
        assert [i.id for i in again] == [item.id] and again[0].attempts == 2

        await journal.saf_retry(item.id, "host unavailable", next_at=300.0)
        assert await journal.saf_claim(now=299.0, link="bank") == []
        third = await journal.saf_claim(now=300.0, link="bank")
        assert third[0].attempts == 3 and third[0].last_error == "host unavailable"
        await journal.saf_done(item.id)

        (advice,) = await journal.saf_claim(node="n2", now=300.0)
        await journal.saf_flag(advice.id, "max attempts")
        stats = await journal.saf_stats()
        assert (stats.depth, stats.done, stats.flagged) == (0, 1, 1)
        (flagged,) = await journal.saf_entries(SafState.FLAGGED)
        assert flagged.last_error == "max attempts" and flagged.claimed_by is None

        with pytest.raises(JournalError, match="no SAF item"):
            await journal.saf_done(99999)

    stored = payloads(db)
    assert all(b"4111111111111111" not in p for p in stored)
    assert stored[0] == b""  # delivered: payload erased


async def test_saf_requires_a_key_and_the_right_key(target: Target) -> None:
    db = target
    async with open_journal(db) as journal:
        with pytest.raises(JournalError, match="no SAF data key"):
            await journal.saf_enqueue("t1", "bank", "1420", b"x")
    async with open_journal(db, saf_key=KEY) as journal:
        await journal.saf_enqueue("t1", "bank", "1420", b"x", now=1.0)
    async with open_journal(db, saf_key=os.urandom(32)) as journal:
        assert await journal.saf_claim(now=2.0) == []  # cannot open: flagged, not returned
        (entry,) = await journal.saf_entries()
        assert entry.state == "flagged" and "data key" in (entry.last_error or "")


async def test_saf_survives_a_restart(target: Target) -> None:
    db = target
    async with open_journal(db, saf_key=KEY) as journal:
        item_id = await journal.saf_enqueue("t1", "bank", "1420", b"reversal", now=1.0)
    async with open_journal(db, saf_key=KEY) as journal:
        (item,) = await journal.saf_claim(now=2.0)
        assert (item.id, item.payload) == (item_id, b"reversal")


# ----------------------------------------------------------------------- shifts


async def test_shift_totals(target: Target) -> None:
    async with open_journal(target) as journal:

        async def txn(state: str, amount: int, **kw: Any) -> None:
            r = row(**{"shift_id": "S7", "amount": amount, **kw})
            await journal.record_received(r)
            await journal.update(r.txn_id, state=state)

        await journal.shift_open("T0000001", "S7", at=10.0)
        await txn("approved", 1000)
        await txn("approved", 2500)
        await txn("approved", 300, processing_code="200000")  # refund
        await txn("reversed", 700)
        await txn("declined", 900)
        await txn("approved", 10000, mti_class="1", request_mti="1100")  # pre-auth
        await txn("approved", 999, shift_id="S8")
        totals = await journal.totals("T0000001", "S7")
        assert totals.get("debit") == (2, 3500)
        assert totals.get("credit") == (1, 300)
        assert totals.get("reversed") == (1, 700)
        assert totals.get("declined") == (1, 900)
        assert totals.get("authorised", "978") == (1, 10000)
        await journal.shift_close("T0000001", "S7", {"debit": [2, 3500]}, True, at=20.0)
        shift = await journal.shift("T0000001", "S7")
        assert shift is not None and shift.in_balance is True and shift.closed_at == 20.0
        assert shift.totals == {"debit": [2, 3500]}
        assert (await journal.totals("T0000001", "none")).lines == ()


async def test_expire_parked_erases_held_reversals_and_old_done_items(target: Target) -> None:
    """Housekeeping: a reversal held past the window is erased, a due one is kept."""
    import time as _time

    from forecourt.switch.journal import PARKED_HORIZON_S, CompleteSaf, ExpireParked

    now = _time.time()
    async with open_journal(target, saf_key=bytes(32)) as journal:
        held = await journal.saf_enqueue(
            "TXNHELD",
            "bank",
            "1420",
            b"{}",
            now=now - 2000,
            next_attempt_at=now + 2 * PARKED_HORIZON_S,
        )
        due = await journal.saf_enqueue("TXNDUE", "bank", "1420", b"{}", now=now - 2000)
        fresh = await journal.saf_enqueue(
            "TXNFRESH", "bank", "1420", b"{}", now=now, next_attempt_at=now + 2 * PARKED_HORIZON_S
        )
        old_done = await journal.saf_enqueue("TXNOLD", "bank", "1420", b"{}", now=now - 90000)
        await journal.write(CompleteSaf(old_done))
        (counts,) = await journal.write(ExpireParked(now - 900, now - 86400, now))
        assert counts == (1, 1, 0)
        pending = {e.id for e in await journal.saf_entries("pending")}
        assert pending == {due, fresh}
        assert held not in pending


async def test_expire_parked_works_in_chunks_of_its_limit(target: Target) -> None:
    """Each op erases and deletes at most `limit` rows; repeating it finishes the job
    and touches nothing still held or due."""
    import time as _time

    from forecourt.switch.journal import PARKED_HORIZON_S, CompleteSaf, ExpireParked

    now = _time.time()
    far = now + 2 * PARKED_HORIZON_S
    async with open_journal(target, saf_key=bytes(32)) as journal:
        held = [
            await journal.saf_enqueue(
                f"H{i}", "bank", "1420", b"{}", now=now - 2000 - i, next_attempt_at=far
            )
            for i in range(5)
        ]
        kept = await journal.saf_enqueue("K", "bank", "1420", b"{}", now=now, next_attempt_at=far)
        for i in range(3):
            done = await journal.saf_enqueue(f"D{i}", "bank", "1420", b"{}", now=now - 90000)
            await journal.write(CompleteSaf(done))
        op = ExpireParked(now - 900, now - 86400, now, limit=2)
        seen = []
        for _ in range(4):
            (counts,) = await journal.write(op)
            seen.append(counts)
        assert seen == [(2, 2, 0), (2, 1, 0), (1, 0, 0), (0, 0, 0)]
        pending = {e.id for e in await journal.saf_entries("pending")}
        assert pending == {kept}
        assert not pending & set(held)


async def test_saf_sweep_erases_a_large_hold_window_in_chunks(tmp_path: Path) -> None:
    """SafSender's sweep repeats the chunked erase until nothing held is left."""
    from forecourt.switch.config import SafConfig
    from forecourt.switch.journal import PARKED_HORIZON_S
    from forecourt.switch.saf import SafSender

    now = time.time()
    far = now + 2 * PARKED_HORIZON_S
    async with open_journal(tmp_path / "j.db", saf_key=KEY) as journal:
        for i in range(1007):  # one more chunk than the default limit of 1,000
            await journal.saf_enqueue(
                f"H{i}", "bank", "1420", b"{}", now=now - 2000, next_attempt_at=far
            )
        kept = await journal.saf_enqueue("K", "bank", "1420", b"{}", now=now, next_attempt_at=far)
        sender = SafSender(
            journal,
            {},
            SafConfig(),
            SwitchMetrics(),
            "node-a",
            hold_approved_s=900.0,
        )
        await sender._sweep(now)
        assert {e.id for e in await journal.saf_entries("pending", limit=10_000)} == {kept}


async def test_get_many_finds_rows_across_chunks_and_skips_unknown_ids(target: Target) -> None:
    async with open_journal(target, saf_key=KEY) as journal:
        rows = [row(n) for n in range(1, 6)]
        for r in rows:
            await journal.record_received(r)
        wanted = [rows[4].txn_id, "NOPE", rows[0].txn_id, rows[2].txn_id]
        found = await journal.get_many(wanted, chunk=2)
        assert [r.txn_id for r in found] == [rows[4].txn_id, rows[0].txn_id, rows[2].txn_id]
        assert found[1] == await journal.get(rows[0].txn_id)


async def test_parked_reversals_are_cancelled_from_the_journal(target: Target) -> None:
    """A completion, a terminal's reversal or a shift close cancels the parked reversal
    through the journal (any node): only an unclaimed reversal under the transaction's
    id, and at shift close only those of the shift's approved transactions."""
    from forecourt.switch.journal import PARKED_HORIZON_S, CancelParked, CancelShiftParked

    now = time.time()
    far = now + 2 * PARKED_HORIZON_S
    async with open_journal(target, saf_key=KEY) as journal:
        rows = {
            "reversed": row(1, state="approved", shift_id="S1"),
            "in_shift": row(2, state="approved", shift_id="S1"),
            "timed_out": row(3, state="reversal_pending", shift_id="S1"),
            "other_shift": row(4, state="approved", shift_id="S0"),
            "other_terminal": row(5, state="approved", shift_id="S1", terminal_id="T0000002"),
        }
        parked = {}
        for name, r in rows.items():
            await journal.record_received(r)
            parked[name] = await journal.saf_enqueue(
                r.txn_id, "bank", "1420", b"{}", now=now, next_attempt_at=far
            )
        # an advice queued under an approved transaction's id is no parked reversal
        advice = await journal.saf_enqueue(
            rows["in_shift"].txn_id, "bank", "1220", b"{}", now=now, next_attempt_at=far
        )
        # a reversal already claimed (being sent) is not taken back
        claimed = await journal.saf_enqueue(rows["reversed"].txn_id, "bank", "1420", b"{}")
        taken = await journal.saf_claim("n1", limit=10, lease_s=30)
        assert [item.id for item in taken] == [claimed]

        (cancelled,) = await journal.write(CancelParked(rows["reversed"].txn_id, "reversed"))
        assert cancelled == 1
        (cancelled,) = await journal.write(CancelShiftParked("T0000001", "S1"))
        assert cancelled == 1  # in_shift only: timed_out must still go, S0 and T2 are not S1
        states = {e.id: (e.state, e.last_error) for e in await journal.saf_entries(limit=100)}
        assert states[parked["reversed"]] == ("done", "cancelled: reversed")
        assert states[parked["in_shift"]] == ("done", "cancelled: shift closed")
        for name in ("timed_out", "other_shift", "other_terminal"):
            assert states[parked[name]][0] == "pending", name
        assert states[advice][0] == "pending"
        assert states[claimed][0] == "in_flight"
        (again,) = await journal.write(CancelParked(rows["reversed"].txn_id, "reversed"))
        assert again == 0
        found = await journal.saf_entries_of([rows["in_shift"].txn_id, "NOPE"], chunk=1)
        assert sorted(e.id for e in found) == sorted([parked["in_shift"], advice])


def test_a_terminal_reversal_keeps_its_batch_on_the_grouped_path(tmp_path: Path) -> None:
    """CancelParked rides with the hot path's writes (one in fifty in the soak's mix):
    outside the grouped path, any batch holding one went write by write."""
    from forecourt.switch.journal import CancelParked, InsertTransaction

    backend = SqliteJournal(tmp_path / "j.db", "normal")
    try:
        first, second = row(1, state="approved"), row(2)
        writes = [
            [InsertTransaction(first)],
            [InsertTransaction(second), CancelParked(first.txn_id, "reversed by the terminal")],
        ]
        grouped = backend._run_grouped(writes)
        assert grouped == [[None], [None, 0]]  # nothing parked under `first`: 0 cancelled
    finally:
        backend.close()


def test_cancelling_a_parked_reversal_reads_by_transaction_not_by_state(tmp_path: Path) -> None:
    """Left to itself SQLite's planner took the (state, created_at) index for these and
    scanned every parked row per cancel: a whole hold window, 10 times a second."""
    from forecourt.switch.journal.sqlite import _CANCEL_PARKED

    SqliteJournal(tmp_path / "j.db", "normal").close()
    with sqlite3.connect(tmp_path / "j.db") as db:
        plan = db.execute(f"EXPLAIN QUERY PLAN {_CANCEL_PARKED}", ("r", "t")).fetchall()
    assert [step[3] for step in plan] == ["SEARCH saf USING INDEX saf_txn (txn_id=?)"]


@pytest.mark.postgres
@pytest.mark.parametrize("statistics", ["analysed", "none yet"])
def test_postgres_cancels_parked_reversals_by_transaction(
    postgres_db: str, statistics: str
) -> None:
    """PostgreSQL plans by statistics: with a hold window of parked reversals (all
    'pending') a cancel must find its row through ``saf (txn_id)`` alone, whether
    autovacuum has analysed the table or not yet (a new journal's first minutes).
    Without statistics it used to AND in ``saf_age`` and read every parked row."""
    import psycopg
    from forecourt.switch.journal.postgres import (
        CANCEL_PARKED_SQL,
        CANCEL_SHIFT_PARKED_SQL,
        PostgresJournal,
    )

    PostgresJournal(postgres_db).close()
    with psycopg.connect(postgres_db, autocommit=True, cursor_factory=psycopg.ClientCursor) as db:
        for table in ("saf", "transactions"):
            db.execute(f"ALTER TABLE {table} SET (autovacuum_enabled = false)")
        db.execute(
            "INSERT INTO transactions (txn_id, node, terminal_id, stan, mti_class, request_mti,"
            " received_at, state, shift_id) SELECT 'X' || g, 'n1', 'T' || (g % 500),"
            " lpad((g % 999999)::text, 6, '0'), '2', '1200', g, 'approved', 'S' || (g / 5000)"
            " FROM generate_series(1, 100000) g"
        )
        db.execute(
            "INSERT INTO saf (txn_id, link, mti, payload, next_attempt_at, created_at)"
            " SELECT 'X' || g, 'bank', '1420', '\\x00'::bytea, g + 900, g"
            " FROM generate_series(1, 100000) g"
        )
        if statistics == "analysed":
            db.execute("ANALYZE saf")
            db.execute("ANALYZE transactions")
        plans = [
            "\n".join(r[0] for r in db.execute(f"EXPLAIN {sql}", args).fetchall())
            for sql, args in (
                (CANCEL_PARKED_SQL, ("reversed", "X77")),
                (CANCEL_SHIFT_PARKED_SQL, ("T77", "S3")),
            )
        ]
        db.execute("BEGIN")
        assert db.execute(CANCEL_PARKED_SQL, ("reversed", "X77")).rowcount == 1
        # S0 of T77 holds X77, X577 ... X4577; X77 is cancelled already
        assert db.execute(CANCEL_SHIFT_PARKED_SQL, ("T77", "S0")).rowcount == 9
        db.execute("ROLLBACK")
    for plan in plans:
        assert "saf_txn" in plan, plan
        for wrong in ("saf_age", "saf_due", "Seq Scan"):
            assert wrong not in plan, plan
