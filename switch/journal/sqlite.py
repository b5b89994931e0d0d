"""The SQLite journal backend: WAL mode, one writer connection, group commit.

Durability choice: ``synchronous=FULL`` (the default, ``[journal] synchronous``).
In WAL mode FULL syncs the WAL at every commit, so a committed batch survives a
power cut; NORMAL syncs only at checkpoints and may lose the last batches (the
database stays consistent). A payment switch must not answer a terminal on the
strength of a record it may lose, so FULL; group commit pays for the fsync.

The statements and the reads are shared with PostgreSQL (``statements.py``,
``apply.py``, ``reader.py``); here: the connection, the migrations' types, the
``INDEXED BY`` hints and the grouped (``executemany``) write path.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path

from forecourt.keys.errors import NotPrivate
from forecourt.keys.private import SQLITE_SIDECARS, private_dir, private_file
from forecourt.switch.journal import apply
from forecourt.switch.journal.backend import BatchWriter, WriteOutcome
from forecourt.switch.journal.kept_sealed import SHIFT_PARKED_IDS, keep_sql
from forecourt.switch.journal.model import PARKED_HORIZON_S, UPDATABLE, JournalError
from forecourt.switch.journal.reader import QueryReader, Record
from forecourt.switch.journal.schema import SQLITE_TYPES, known_version, render, run_migration
from forecourt.switch.journal.statements import Statements
from forecourt.switch.journal.writes import (
    AddEvent,
    CancelParked,
    CancelShiftParked,
    CompleteSaf,
    EnqueueSaf,
    ExpireParked,
    InsertTransaction,
    RetrySaf,
    TakeOverStale,
    UpdateTransaction,
    WriteOp,
)

# Versioned schema migrations, applied in order at open and by `forecourt db migrate`.
MIGRATIONS: list[tuple[int, str]] = render(SQLITE_TYPES)

LATEST_VERSION = MIGRATIONS[-1][0]
_RECORD_VERSION = "INSERT INTO schema_version (version, applied_at) VALUES (?, ?)"

# INDEXED BY: left to itself the planner took saf_age for `state = ?` and scanned
# every parked row for each cancel (150,000 at 500/s with a 300 s hold window: the
# soak's terminal reversals put the switch over a core, 912s).
SQLITE = Statements.build(saf_by_txn="saf INDEXED BY saf_txn")
_CANCEL_PARKED = SQLITE.cancel_parked
_SQLITE_FLOOR = "CAST({} AS INTEGER)"


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=10.0)
    conn.execute("PRAGMA busy_timeout = 10000")
    return conn


def _make_private(path: Path) -> None:
    """journal.db, its -wal/-shm (SQLite gives them the database's mode) and the
    data directory are for the switch's user alone: 0600 / 0700, tightened if wider."""
    try:
        private_dir(path.parent)
        private_file(path, SQLITE_SIDECARS)
    except NotPrivate as exc:
        raise JournalError(f"journal: {exc}") from None


def current_version(conn: sqlite3.Connection) -> int:
    has = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
    ).fetchone()
    if not has:
        return 0
    row = conn.execute("SELECT max(version) FROM schema_version").fetchone()
    return int(row[0] or 0)


def migrate(conn: sqlite3.Connection) -> int:
    """Apply every migration the database lacks; returns the schema version."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_version "
        "(version INTEGER PRIMARY KEY, applied_at REAL NOT NULL)"
    )
    for version, sql in MIGRATIONS:
        conn.execute("BEGIN IMMEDIATE")
        try:
            if current_version(conn) < version:
                run_migration(version, sql, conn.execute, _RECORD_VERSION)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return known_version(current_version(conn), LATEST_VERSION)


class _Regroup(Exception):
    """A grouped batch must go the per-write path (an UPDATE missed its row)."""


class SqliteJournal(BatchWriter):
    """The SQLite backend (see ``JournalBackend``). Open it with ``open``."""

    def __init__(self, path: Path, synchronous: str = "full") -> None:
        super().__init__()
        self.path = path
        _make_private(path)
        self._conn = _connect(path)
        try:
            mode = self._conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise JournalError(f"journal: cannot switch {path.name} to WAL mode")
            sync = {"full": "FULL", "normal": "NORMAL"}[synchronous]
            self._conn.execute(f"PRAGMA synchronous = {sync}")
            self._version = migrate(self._conn)
        except BaseException:
            self._conn.close()
            raise

    def open_reader(self) -> SqliteReader:
        return SqliteReader(self.path)

    def close(self) -> None:
        self._conn.close()

    # -- the writer

    def run_batch(self, writes: Sequence[Sequence[WriteOp]]) -> list[WriteOutcome]:
        if writes:
            grouped = self._run_grouped(writes)
            if grouped is not None:
                return grouped
        conn = self._conn
        self._begin_immediate()
        try:
            outcomes = apply.each_write_alone(
                writes,
                lambda ops: [self._apply(op) for op in ops],
                conn.execute,
                sqlite3.Error,
                lambda exc: JournalError(f"journal: {exc}"),
            )
            self._commit_with(conn.execute)
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        self._commits += 1
        return outcomes

    def _run_grouped(self, writes: Sequence[Sequence[WriteOp]]) -> list[WriteOutcome] | None:
        """The batch as one ``executemany`` per statement, or None for the per-write path.

        The per-write path runs every statement and two savepoints per write through
        Python; each call releases and retakes the GIL, and a worker thread waiting
        for the GIL behind a busy event loop is what limited the writer (profiled:
        ~40 writes per batch, ~50 ms per batch). Grouped, a batch costs a handful of
        calls. It applies only to the hot path's operations, when no two operations
        of the batch touch the same row (so the grouped order gives the same result
        as the written order); if any statement fails or an UPDATE misses its row,
        the whole transaction is rolled back and the batch goes the per-write path,
        which tells each write its own outcome. Nothing is committed twice: the
        rollback happens before any COMMIT.
        """
        results: list[list[object]] = [[None] * len(ops) for ops in writes]
        inserts: list[list[object]] = []
        events: list[tuple[object, ...]] = []
        safs: list[tuple[object, ...]] = []
        saf_slots: list[tuple[int, int]] = []
        saf_done: list[tuple[object, ...]] = []
        saf_retry: list[tuple[object, ...]] = []
        cancels: list[tuple[int, int, tuple[str, str]]] = []
        updates: dict[str, list[list[object]]] = {}
        txn_rows: set[str] = set()
        saf_rows: set[int] = set()
        for w, ops in enumerate(writes):
            for i, op in enumerate(ops):
                kind = type(op)
                if kind is AddEvent:
                    ev = op.event  # type: ignore[union-attr]
                    events.append((ev.txn_id, ev.at, ev.kind, ev.detail))
                elif kind is InsertTransaction:
                    row = op.row  # type: ignore[union-attr]
                    if row.txn_id in txn_rows:
                        return None
                    txn_rows.add(row.txn_id)
                    inserts.append(apply.insert_params(row))
                elif kind is EnqueueSaf:
                    assert isinstance(op, EnqueueSaf)
                    saf_slots.append((w, i))
                    safs.append(apply.saf_params(op))
                elif kind is UpdateTransaction:
                    assert isinstance(op, UpdateTransaction)
                    names = tuple(op.changes)
                    if op.txn_id in txn_rows or not names or not UPDATABLE.issuperset(names):
                        return None
                    txn_rows.add(op.txn_id)
                    updates.setdefault(SQLITE.update_txn(names), []).append(
                        [*(apply.db_value(n, op.changes[n]) for n in names), op.txn_id]
                    )
                elif kind is CompleteSaf or kind is RetrySaf:
                    item_id = op.item_id  # type: ignore[union-attr]
                    if item_id in saf_rows:
                        return None
                    saf_rows.add(item_id)
                    if isinstance(op, RetrySaf):
                        saf_retry.append((op.error, op.next_attempt_at, item_id))
                    else:
                        saf_done.append((item_id,))
                elif kind is CancelParked:
                    # a terminal's reversal (2 % of the soak's mix): without this, every
                    # batch holding one took the per-write path (measured: 912s at 500/s)
                    assert isinstance(op, CancelParked)
                    cancels.append((w, i, (f"cancelled: {op.reason}", op.txn_id)))
                else:
                    return None
        conn = self._conn
        self._begin_immediate()
        try:
            try:
                if inserts:
                    conn.executemany(SQLITE.insert_txn, inserts)
                for sql, params in updates.items():
                    if conn.executemany(sql, params).rowcount != len(params):
                        raise _Regroup
                if events:
                    conn.executemany(SQLITE.insert_event, events)
                if safs:
                    conn.executemany(SQLITE.insert_saf, safs)
                    # AUTOINCREMENT under the write lock: one statement's rows get
                    # consecutive ids ending at the last one inserted.
                    last = int(conn.execute("SELECT last_insert_rowid()").fetchone()[0])
                    for n, (w, i) in enumerate(saf_slots):
                        results[w][i] = last - len(safs) + 1 + n
                for saf_sql, saf_params in (
                    (SQLITE.done_saf, saf_done),
                    (SQLITE.retry_saf, saf_retry),
                ):
                    if saf_params and conn.executemany(saf_sql, saf_params).rowcount != len(
                        saf_params
                    ):
                        raise _Regroup
                for w, i, cancel in cancels:  # a few a batch: each its own count
                    results[w][i] = conn.execute(SQLITE.cancel_parked, cancel).rowcount
            except (sqlite3.Error, _Regroup):
                conn.execute("ROLLBACK")
                return None
            self._commit_with(conn.execute)
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        self._commits += 1
        return list(results)

    def _begin_immediate(self, attempts: int = 5) -> None:
        """Take the write lock; other processes' writers (``serve --workers``) may hold
        it: busy_timeout waits up to 10 s each time, then a few more tries."""
        for attempt in range(attempts):
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise
                if attempt == attempts - 1:
                    raise
                time.sleep(0.01 * (attempt + 1))

    def _apply(self, op: WriteOp) -> object:
        c = self._conn
        match op:
            case ExpireParked():
                horizon = op.now + PARKED_HORIZON_S
                held = (
                    "SELECT id FROM saf INDEXED BY saf_age "
                    "WHERE state = 'pending' AND created_at < ? AND next_attempt_at > ? LIMIT ?"
                )
                params = (op.held_before, horizon, op.limit)
                if self.keep_sealed is not None:
                    keep, kept = keep_sql(self.keep_sealed, op.now, _SQLITE_FLOOR, "?")
                    c.execute(keep.format(ids=held), (*kept, *params))
                erased = c.execute(
                    "UPDATE saf SET state = 'done', payload = x'', "
                    f"last_error = 'expired: held too long' WHERE id IN ({held})",
                    params,
                ).rowcount
                deleted = c.execute(
                    "DELETE FROM saf WHERE id IN (SELECT id FROM saf INDEXED BY saf_age "
                    "WHERE state = 'done' AND created_at < ? LIMIT ?)",
                    (op.done_before, op.limit),
                ).rowcount
                forgotten = c.execute(
                    "DELETE FROM recon_sealed WHERE txn_id IN (SELECT txn_id FROM recon_sealed"
                    " WHERE erase_at < ? LIMIT ?)",
                    (op.now, op.limit),
                ).rowcount
                return (erased, deleted, forgotten)
            case CancelShiftParked() if self.keep_sealed is not None:
                keep, kept = keep_sql(self.keep_sealed, time.time(), _SQLITE_FLOOR, "?")
                c.execute(keep.format(ids=SHIFT_PARKED_IDS), (*kept, op.terminal_id, op.shift_id))
            case TakeOverStale():
                # No data-modifying CTEs in SQLite: three statements under the one writer.
                taken = c.execute(
                    "UPDATE transactions SET state = 'reversal_pending' WHERE state = "
                    "'forwarded' AND node <> ? AND forwarded_at < ? RETURNING txn_id, node",
                    (op.node, op.forwarded_before),
                ).fetchall()
                detail = json.dumps({"taken_over": op.node})
                for txn_id, _ in taken:
                    c.execute(SQLITE.insert_event, (txn_id, op.now, "reversal_pending", detail))
                    c.execute(
                        "UPDATE saf SET next_attempt_at = ?, last_error = ? "
                        "WHERE state = 'pending' AND txn_id = ?",
                        (op.now, "in flight when its node stopped; taken over", txn_id),
                    )
                return sorted((str(t), str(n)) for t, n in taken)
        return apply.result(op, apply.send(op, SQLITE, c.execute))


class SqliteReader(QueryReader):
    """A read connection (query_only); used by one thread at a time."""

    statements = SQLITE

    def __init__(self, path: Path) -> None:
        if not path.exists():
            raise JournalError(f"no journal at {path}")
        self._conn = _connect(path)
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA query_only = ON")

    def close(self) -> None:
        self._conn.close()

    def schema_version(self) -> int:
        return current_version(self._conn)

    def _rows(self, query: str, params: Sequence[object] = ()) -> list[Record]:
        rows: list[Record] = self._conn.execute(query, params).fetchall()
        return rows
