"""The SQLite journal backend: WAL mode, one writer connection, group commit.

Durability choice: ``synchronous=FULL`` (the default, ``[journal] synchronous``).
In WAL mode FULL syncs the WAL at every commit, so a committed batch survives a
power cut; NORMAL syncs only at checkpoints and may lose the last batches (the
database stays consistent). A payment switch must not answer a terminal on the
strength of a record it may lose, so FULL; group commit pays for the fsync.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from forecourt.switch.journal.backend import WriteOutcome
from forecourt.switch.journal.model import (
    COLUMNS,
    PARKED_HORIZON_S,
    PARKED_REVERSAL_SQL,
    UPDATABLE,
    AddEvent,
    CancelParked,
    CancelShiftParked,
    ClaimSaf,
    CloseShift,
    CompleteSaf,
    EnqueueSaf,
    Event,
    ExpireParked,
    FlagSaf,
    InsertTransaction,
    JournalError,
    JournalRow,
    OpenShift,
    RetrySaf,
    SafEntry,
    SafState,
    SafStats,
    ShiftRecord,
    ShiftTotals,
    TakeOverStale,
    TotalsLine,
    TxnState,
    UnknownTransaction,
    UpdateTransaction,
    WriteOp,
    saf_entries_of_txns,
)

_TXN_STATES = ", ".join(f"'{s.value}'" for s in TxnState)
_SAF_STATES = ", ".join(f"'{s.value}'" for s in SafState)

# Versioned schema migrations, applied in order at open and by `forecourt db migrate`.
# Statements are separated by ";" (no literal may contain one). Never edit a
# released migration; add the next version.
MIGRATIONS: list[tuple[int, str]] = [
    (
        1,
        f"""
        CREATE TABLE transactions (
            txn_id          TEXT PRIMARY KEY,
            node            TEXT NOT NULL,
            terminal_id     TEXT NOT NULL,
            stan            TEXT NOT NULL,
            mti_class       TEXT NOT NULL,
            request_mti     TEXT NOT NULL,
            response_mti    TEXT,
            state           TEXT NOT NULL CHECK (state IN ({_TXN_STATES})),
            action_code     TEXT,
            amount          INTEGER,
            approved_amount INTEGER,
            currency        TEXT,
            masked_pan      TEXT,
            processing_code TEXT,
            route           TEXT,
            acquirer_stan   TEXT,
            rrn             TEXT,
            auth_code       TEXT,
            original_txn_id TEXT,
            shift_id        TEXT,
            received_at     REAL NOT NULL,
            forwarded_at    REAL,
            answered_at     REAL,
            host_ms         REAL,
            switch_ms       REAL,
            response_raw    BLOB,
            flags           TEXT NOT NULL DEFAULT ''
        );
        CREATE INDEX transactions_terminal_key
            ON transactions (terminal_id, stan, mti_class, received_at);
        CREATE INDEX transactions_state ON transactions (state);
        CREATE INDEX transactions_shift ON transactions (terminal_id, shift_id);
        CREATE INDEX transactions_original ON transactions (original_txn_id);
        CREATE TABLE events (
            id      INTEGER PRIMARY KEY,
            txn_id  TEXT NOT NULL,
            at      REAL NOT NULL,
            kind    TEXT NOT NULL,
            detail  TEXT
        );
        CREATE INDEX events_txn ON events (txn_id, id);
        CREATE TABLE saf (
            id              INTEGER PRIMARY KEY AUTOINCREMENT,
            txn_id          TEXT NOT NULL,
            link            TEXT NOT NULL,
            mti             TEXT NOT NULL,
            payload         BLOB NOT NULL,
            attempts        INTEGER NOT NULL DEFAULT 0,
            next_attempt_at REAL NOT NULL,
            state           TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ({_SAF_STATES})),
            claimed_by      TEXT,
            lease_until     REAL,
            created_at      REAL NOT NULL,
            last_error      TEXT
        );
        CREATE INDEX saf_due ON saf (state, next_attempt_at);
        CREATE TABLE shifts (
            terminal_id TEXT NOT NULL,
            shift_id    TEXT NOT NULL,
            opened_at   REAL NOT NULL,
            closed_at   REAL,
            totals      TEXT,
            in_balance  INTEGER,
            PRIMARY KEY (terminal_id, shift_id)
        )
        """,
    ),
    (
        2,
        # recovery warms the duplicate window from the latest rows; on a journal of
        # millions of rows that needs an index (measured: 9.5 s start on 10 M rows)
        """
        CREATE INDEX IF NOT EXISTS transactions_received_at ON transactions (received_at);
        CREATE INDEX IF NOT EXISTS saf_txn ON saf (txn_id);
        """,
    ),
    (
        3,
        # SAF housekeeping picks parked reversals and delivered items by age; without
        # this it scanned every parked row (0.28 s a minute at 480,000 rows, 600/s)
        """
        CREATE INDEX IF NOT EXISTS saf_age ON saf (state, created_at);
        """,
    ),
]

LATEST_VERSION = MIGRATIONS[-1][0]


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=10.0)
    conn.execute("PRAGMA busy_timeout = 10000")
    return conn


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
                for stmt in sql.split(";"):
                    if stmt.strip():
                        conn.execute(stmt)
                conn.execute(
                    "INSERT INTO schema_version (version, applied_at) VALUES (?, ?)",
                    (version, time.time()),
                )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    version = current_version(conn)
    if version > LATEST_VERSION:
        raise JournalError(
            f"journal schema version {version} is newer than this forecourt ({LATEST_VERSION})"
        )
    return version


def _row(r: sqlite3.Row) -> JournalRow:
    values: dict[str, Any] = {k: r[k] for k in COLUMNS}
    return JournalRow(**values)


def _db_value(name: str, value: object) -> object:
    if name == "flags":
        return ",".join(value) if isinstance(value, tuple | list) else (value or "")
    if name == "response_raw" and isinstance(value, bytearray | memoryview):
        return bytes(value)
    return value


_INSERT_TXN = (
    f"INSERT INTO transactions ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
)
_INSERT_EVENT = "INSERT INTO events (txn_id, at, kind, detail) VALUES (?, ?, ?, ?)"
_INSERT_SAF = (
    "INSERT INTO saf (txn_id, link, mti, payload, next_attempt_at, created_at) "
    "VALUES (?, ?, ?, ?, ?, ?)"
)
_DONE_SAF = (
    "UPDATE saf SET state = 'done', payload = x'', claimed_by = NULL, lease_until = NULL "
    "WHERE id = ?"
)
_RETRY_SAF = (
    "UPDATE saf SET state = 'pending', last_error = ?, next_attempt_at = ?, "
    "claimed_by = NULL, lease_until = NULL WHERE id = ?"
)
# INDEXED BY: left to itself the planner took saf_age for `state = ?` and scanned
# every parked row for each cancel (150,000 at 500/s with a 300 s hold window: the
# soak's terminal reversals put the switch over a core, 912s).
_CANCEL_PARKED = (
    "UPDATE saf INDEXED BY saf_txn SET state = 'done', payload = x'', last_error = ? "
    f"WHERE txn_id = ? AND {PARKED_REVERSAL_SQL}"
)


class _Regroup(Exception):
    """A grouped batch must go the per-write path (an UPDATE missed its row)."""


_SAF_COLUMNS = (
    "id, txn_id, link, mti, attempts, next_attempt_at, state, claimed_by, lease_until, "
    "created_at, last_error"
)
_SAF_FIELDS = tuple(c.strip() for c in _SAF_COLUMNS.split(","))


class SqliteJournal:
    """The SQLite backend (see ``JournalBackend``). Open it with ``open``."""

    def __init__(self, path: Path, synchronous: str = "full") -> None:
        self.path = path
        self._commits = 0
        # Tests use this to prove nothing is acknowledged when a commit fails.
        self.before_commit: Callable[[], None] | None = None
        path.parent.mkdir(parents=True, exist_ok=True)
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

    @property
    def commits(self) -> int:
        return self._commits

    def schema_version(self) -> int:
        return self._version

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
        outcomes: list[WriteOutcome] = []
        self._begin_immediate()
        try:
            for ops in writes:
                conn.execute("SAVEPOINT one_write")
                try:
                    results = [self._apply(op) for op in ops]
                except (sqlite3.Error, JournalError) as exc:
                    conn.execute("ROLLBACK TO one_write")
                    conn.execute("RELEASE one_write")
                    outcomes.append(
                        exc if isinstance(exc, JournalError) else JournalError(f"journal: {exc}")
                    )
                else:
                    conn.execute("RELEASE one_write")
                    outcomes.append(results)
            if self.before_commit is not None:
                self.before_commit()
            conn.execute("COMMIT")
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
        saf_done: list[tuple[int]] = []
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
                    inserts.append([_db_value(n, getattr(row, n)) for n in COLUMNS])
                elif kind is EnqueueSaf:
                    assert isinstance(op, EnqueueSaf)
                    saf_slots.append((w, i))
                    safs.append(
                        (
                            op.txn_id,
                            op.link,
                            op.mti,
                            op.sealed_payload,
                            op.next_attempt_at,
                            op.created_at,
                        )
                    )
                elif kind is UpdateTransaction:
                    assert isinstance(op, UpdateTransaction)
                    names = tuple(op.changes)
                    if op.txn_id in txn_rows or not names or not UPDATABLE.issuperset(names):
                        return None
                    txn_rows.add(op.txn_id)
                    sql = f"UPDATE transactions SET {', '.join(f'{n} = ?' for n in names)} "
                    updates.setdefault(sql + "WHERE txn_id = ?", []).append(
                        [*(_db_value(n, op.changes[n]) for n in names), op.txn_id]
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
                    conn.executemany(_INSERT_TXN, inserts)
                for sql, params in updates.items():
                    if conn.executemany(sql, params).rowcount != len(params):
                        raise _Regroup
                if events:
                    conn.executemany(_INSERT_EVENT, events)
                if safs:
                    conn.executemany(_INSERT_SAF, safs)
                    # AUTOINCREMENT under the write lock: one statement's rows get
                    # consecutive ids ending at the last one inserted.
                    last = int(conn.execute("SELECT last_insert_rowid()").fetchone()[0])
                    for n, (w, i) in enumerate(saf_slots):
                        results[w][i] = last - len(safs) + 1 + n
                if saf_done and conn.executemany(_DONE_SAF, saf_done).rowcount != len(saf_done):
                    raise _Regroup
                if saf_retry and conn.executemany(_RETRY_SAF, saf_retry).rowcount != len(saf_retry):
                    raise _Regroup
                for w, i, cancel in cancels:  # a few a batch: each its own count
                    results[w][i] = conn.execute(_CANCEL_PARKED, cancel).rowcount
            except (sqlite3.Error, _Regroup):
                conn.execute("ROLLBACK")
                return None
            if self.before_commit is not None:
                self.before_commit()
            conn.execute("COMMIT")
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
            case InsertTransaction(row=row):
                c.execute(_INSERT_TXN, [_db_value(n, getattr(row, n)) for n in COLUMNS])
                return None
            case UpdateTransaction(txn_id=txn_id, changes=changes):
                names = [n for n in changes if n in UPDATABLE]
                if len(names) != len(changes):
                    raise JournalError("update: unknown or read-only column")
                if not names:
                    return None
                sets = ", ".join(f"{n} = ?" for n in names)
                cur = c.execute(
                    f"UPDATE transactions SET {sets} WHERE txn_id = ?",
                    [*(_db_value(n, changes[n]) for n in names), txn_id],
                )
                if cur.rowcount == 0:
                    raise UnknownTransaction(f"no transaction {txn_id}")
                return None
            case AddEvent(event=ev):
                c.execute(
                    "INSERT INTO events (txn_id, at, kind, detail) VALUES (?, ?, ?, ?)",
                    (ev.txn_id, ev.at, ev.kind, ev.detail),
                )
                return None
            case EnqueueSaf():
                cur = c.execute(
                    "INSERT INTO saf (txn_id, link, mti, payload, next_attempt_at, created_at) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        op.txn_id,
                        op.link,
                        op.mti,
                        op.sealed_payload,
                        op.next_attempt_at,
                        op.created_at,
                    ),
                )
                return cur.lastrowid
            case ClaimSaf():
                link_sql = "AND link = ?" if op.link is not None else ""
                params: list[object] = [op.node, op.now + op.lease_s, op.now, op.now]
                if op.link is not None:
                    params.append(op.link)
                params.append(op.limit)
                rows = c.execute(
                    "UPDATE saf SET state = 'in_flight', claimed_by = ?, lease_until = ?, "
                    "attempts = attempts + 1 WHERE id IN (SELECT id FROM saf WHERE "
                    "((state = 'pending' AND next_attempt_at <= ?) OR "
                    f"(state = 'in_flight' AND lease_until <= ?)) {link_sql} "
                    "ORDER BY id LIMIT ?) "
                    "RETURNING id, txn_id, link, mti, payload, attempts, created_at, last_error",
                    params,
                ).fetchall()
                return sorted(tuple(r) for r in rows)
            case CompleteSaf(item_id=item_id):
                self._saf_update(
                    "state = 'done', payload = x'', claimed_by = NULL, lease_until = NULL",
                    (),
                    item_id,
                )
                return None
            case ExpireParked():
                horizon = op.now + PARKED_HORIZON_S
                erased = c.execute(
                    "UPDATE saf SET state = 'done', payload = x'', "
                    "last_error = 'expired: held too long' "
                    "WHERE id IN (SELECT id FROM saf INDEXED BY saf_age "
                    "WHERE state = 'pending' AND created_at < ? AND next_attempt_at > ? LIMIT ?)",
                    (op.held_before, horizon, op.limit),
                ).rowcount
                deleted = c.execute(
                    "DELETE FROM saf WHERE id IN (SELECT id FROM saf INDEXED BY saf_age "
                    "WHERE state = 'done' AND created_at < ? LIMIT ?)",
                    (op.done_before, op.limit),
                ).rowcount
                return (erased, deleted)
            case CancelParked():
                return c.execute(_CANCEL_PARKED, (f"cancelled: {op.reason}", op.txn_id)).rowcount
            case CancelShiftParked():
                return c.execute(
                    "UPDATE saf INDEXED BY saf_txn SET state = 'done', payload = x'', "
                    "last_error = 'cancelled: shift closed' "
                    f"WHERE {PARKED_REVERSAL_SQL} AND txn_id IN (SELECT txn_id FROM transactions "
                    "WHERE terminal_id = ? AND shift_id = ? AND state = 'approved')",
                    (op.terminal_id, op.shift_id),
                ).rowcount
            case RetrySaf():
                self._saf_update(
                    "state = 'pending', last_error = ?, next_attempt_at = ?, "
                    "claimed_by = NULL, lease_until = NULL",
                    (op.error, op.next_attempt_at),
                    op.item_id,
                )
                return None
            case FlagSaf():
                self._saf_update(
                    "state = 'flagged', last_error = coalesce(?, last_error), "
                    "claimed_by = NULL, lease_until = NULL",
                    (op.error,),
                    op.item_id,
                )
                return None
            case OpenShift():
                c.execute(
                    "INSERT INTO shifts (terminal_id, shift_id, opened_at) VALUES (?, ?, ?) "
                    "ON CONFLICT (terminal_id, shift_id) DO NOTHING",
                    (op.terminal_id, op.shift_id, op.at),
                )
                return None
            case CloseShift():
                c.execute(
                    "INSERT INTO shifts (terminal_id, shift_id, opened_at, closed_at, totals, "
                    "in_balance) VALUES (?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT (terminal_id, shift_id) DO UPDATE SET "
                    "closed_at = excluded.closed_at, totals = excluded.totals, "
                    "in_balance = excluded.in_balance",
                    (
                        op.terminal_id,
                        op.shift_id,
                        op.at,
                        op.at,
                        json.dumps(dict(op.totals), sort_keys=True),
                        int(op.in_balance),
                    ),
                )
                return None
            case TakeOverStale():
                taken = c.execute(
                    "UPDATE transactions SET state = 'reversal_pending' WHERE state = "
                    "'forwarded' AND node <> ? AND forwarded_at < ? RETURNING txn_id, node",
                    (op.node, op.forwarded_before),
                ).fetchall()
                for txn_id, _ in taken:
                    c.execute(
                        "INSERT INTO events (txn_id, at, kind, detail) VALUES (?, ?, ?, ?)",
                        (txn_id, op.now, "reversal_pending", json.dumps({"taken_over": op.node})),
                    )
                    c.execute(
                        "UPDATE saf SET next_attempt_at = ?, last_error = ? "
                        "WHERE state = 'pending' AND txn_id = ?",
                        (op.now, "in flight when its node stopped; taken over", txn_id),
                    )
                return sorted((str(t), str(n)) for t, n in taken)
        raise JournalError(f"unknown journal operation {type(op).__name__}")

    def _saf_update(self, sets: str, params: tuple[object, ...], item_id: int) -> None:
        cur = self._conn.execute(f"UPDATE saf SET {sets} WHERE id = ?", (*params, item_id))
        if cur.rowcount == 0:
            raise JournalError(f"no SAF item {item_id}")


class SqliteReader:
    """A read connection (query_only); used by one thread at a time."""

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

    def _rows(self, sql: str, params: Sequence[object] = ()) -> list[sqlite3.Row]:
        return self._conn.execute(sql, params).fetchall()

    def get(self, txn_id: str) -> JournalRow | None:
        rows = self._rows("SELECT * FROM transactions WHERE txn_id = ?", (txn_id,))
        return _row(rows[0]) if rows else None

    def find_by_terminal_key(
        self, mti_class: str, terminal_id: str, stan: str
    ) -> JournalRow | None:
        rows = self._rows(
            "SELECT * FROM transactions WHERE terminal_id = ? AND stan = ? AND mti_class = ? "
            "ORDER BY received_at DESC LIMIT 1",
            (terminal_id, stan, mti_class),
        )
        return _row(rows[0]) if rows else None

    def list_transactions(
        self, limit: int, terminal: str | None, state: str | None
    ) -> list[JournalRow]:
        where, params = [], []
        if terminal is not None:
            where.append("terminal_id = ?")
            params.append(terminal)
        if state is not None:
            where.append("state = ?")
            params.append(state)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        rows = self._rows(
            f"SELECT * FROM transactions {clause} ORDER BY received_at DESC LIMIT ?",
            (*params, limit),
        )
        return [_row(r) for r in rows]

    def recover(self, node: str | None) -> list[JournalRow]:
        sql = "SELECT * FROM transactions WHERE state IN ('received', 'forwarded')"
        params: tuple[object, ...] = ()
        if node is not None:
            sql += " AND node = ?"
            params = (node,)
        return [_row(r) for r in self._rows(sql + " ORDER BY received_at", params)]

    def events(self, txn_id: str) -> list[Event]:
        rows = self._rows(
            "SELECT txn_id, at, kind, detail FROM events WHERE txn_id = ? ORDER BY id", (txn_id,)
        )
        return [Event(r["txn_id"], r["at"], r["kind"], r["detail"]) for r in rows]

    def saf_stats(self) -> SafStats:
        # A reversal parked for an answered transaction is not work to do: counted apart.
        horizon = time.time() + PARKED_HORIZON_S
        counts = {
            r[0]: r[1]
            for r in self._rows(
                "SELECT CASE WHEN state = 'pending' AND next_attempt_at > ? THEN 'parked'"
                " ELSE state END, count(*) FROM saf GROUP BY 1",
                (horizon,),
            )
        }
        live = (
            "state IN ('pending', 'in_flight') AND NOT (state = 'pending' AND next_attempt_at > ?)"
        )
        oldest = self._rows(f"SELECT min(created_at) FROM saf WHERE {live}", (horizon,))[0][0]
        by_link = {
            r[0]: r[1]
            for r in self._rows(
                f"SELECT link, count(*) FROM saf WHERE {live} GROUP BY link", (horizon,)
            )
        }
        return SafStats(
            pending=counts.get("pending", 0),
            in_flight=counts.get("in_flight", 0),
            flagged=counts.get("flagged", 0),
            done=counts.get("done", 0),
            oldest_created_at=oldest,
            depth_by_link=by_link,
            parked=counts.get("parked", 0),
        )

    def open_shifts(self) -> list[tuple[str, str]]:
        rows = self._rows(
            "SELECT terminal_id, shift_id FROM shifts WHERE closed_at IS NULL ORDER BY opened_at"
        )
        return [(r[0], r[1]) for r in rows]

    def saf_entries(self, state: str | None, limit: int) -> list[SafEntry]:
        if state is None:
            rows = self._rows(f"SELECT {_SAF_COLUMNS} FROM saf ORDER BY id LIMIT ?", (limit,))
        else:
            rows = self._rows(
                f"SELECT {_SAF_COLUMNS} FROM saf WHERE state = ? ORDER BY id LIMIT ?",
                (state, limit),
            )
        return [SafEntry(**{k: r[k] for k in _SAF_FIELDS}) for r in rows]

    def saf_entries_of(self, txn_ids: Sequence[str]) -> list[SafEntry]:
        return saf_entries_of_txns(self._rows, "?", txn_ids)

    def totals(self, terminal_id: str, shift_id: str) -> ShiftTotals:
        rows = self._rows(
            """
            SELECT coalesce(currency, '') AS currency,
                CASE
                    WHEN mti_class = '2' AND state = 'approved'
                         AND substr(coalesce(processing_code, '00'), 1, 2) = '20' THEN 'credit'
                    WHEN mti_class = '2' AND state = 'approved' THEN 'debit'
                    WHEN mti_class = '2' AND state = 'reversed' THEN 'reversed'
                    WHEN mti_class = '1' AND state = 'approved' THEN 'authorised'
                    WHEN mti_class IN ('1', '2') AND state = 'declined' THEN 'declined'
                END AS category,
                count(*) AS n,
                coalesce(sum(coalesce(approved_amount, amount, 0)), 0) AS total
            FROM transactions
            WHERE terminal_id = ? AND shift_id = ?
            GROUP BY 1, 2
            HAVING category IS NOT NULL
            ORDER BY 2, 1
            """,
            (terminal_id, shift_id),
        )
        lines = tuple(TotalsLine(r["currency"], r["category"], r["n"], r["total"]) for r in rows)
        return ShiftTotals(terminal_id, shift_id, lines)

    def shift(self, terminal_id: str, shift_id: str) -> ShiftRecord | None:
        rows = self._rows(
            "SELECT * FROM shifts WHERE terminal_id = ? AND shift_id = ?", (terminal_id, shift_id)
        )
        if not rows:
            return None
        r = rows[0]
        return ShiftRecord(
            terminal_id=r["terminal_id"],
            shift_id=r["shift_id"],
            opened_at=r["opened_at"],
            closed_at=r["closed_at"],
            totals=json.loads(r["totals"]) if r["totals"] else None,
            in_balance=None if r["in_balance"] is None else bool(r["in_balance"]),
        )
