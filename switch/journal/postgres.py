"""The PostgreSQL journal backend: several switch nodes share one journal.

Same contract as the SQLite backend (``JournalBackend`` / ``JournalReader``):
one writer connection runs each batch as ONE transaction with a savepoint per
write, and readers borrow connections from a pool (psycopg_pool).

Round trips: the writer first tries the whole batch in pipeline mode — BEGIN and
every statement go out together, one network round trip, then one for COMMIT.
Only when something in the batch fails (a duplicate id, an update of an unknown
transaction, a deadlock) is the batch rolled back and replayed the slow way, one
savepoint per write, so that a bad write fails alone exactly as with SQLite.

SAF claims use ``SELECT ... FOR UPDATE SKIP LOCKED``: two nodes claiming at the
same time never get the same item, and neither waits for the other.

The statements and the reads are shared with SQLite (``statements.py``,
``apply.py``, ``reader.py``, written with ``?`` and converted); here: the
connections, the migrations' types, the pipeline, ``FOR UPDATE SKIP LOCKED`` and
the one-statement takeover and housekeeping.

Database errors are reported by class name and SQLSTATE only: driver messages
may quote parameters.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

import psycopg
from forecourt.switch.journal import apply
from forecourt.switch.journal.backend import BatchWriter, WriteOutcome
from forecourt.switch.journal.domains import DOMAIN_OPS
from forecourt.switch.journal.kept_sealed import SHIFT_PARKED_IDS, keep_sql
from forecourt.switch.journal.model import PARKED_HORIZON_S, PARKED_REVERSAL_SQL, JournalError
from forecourt.switch.journal.reader import QueryReader, Record
from forecourt.switch.journal.schema import POSTGRES_TYPES, known_version, render, run_migration
from forecourt.switch.journal.statements import Statements, pyformat
from forecourt.switch.journal.writes import CancelShiftParked, ExpireParked, TakeOverStale, WriteOp
from psycopg.rows import dict_row, tuple_row
from psycopg_pool import ConnectionPool

_MIGRATION_LOCK = 8583000002  # pg_advisory_xact_lock key: one node migrates at a time

# Versioned like the SQLite MIGRATIONS (same version numbers, same tables); never
# edit a released migration, add the next version.
PG_MIGRATIONS: list[tuple[int, str]] = render(POSTGRES_TYPES)

PG_LATEST_VERSION = PG_MIGRATIONS[-1][0]
_RECORD_VERSION = "INSERT INTO journal_schema_version (version, applied_at) VALUES (%s, %s)"


def _error(exc: BaseException) -> JournalError:
    state = getattr(exc, "sqlstate", None)
    return JournalError(f"journal: {type(exc).__name__}" + (f" ({state})" if state else ""))


def _current_version(conn: psycopg.Connection[Any]) -> int:
    with conn.cursor(row_factory=tuple_row) as cur:
        row = cur.execute("SELECT to_regclass('journal_schema_version') IS NOT NULL").fetchone()
        if not row or not row[0]:
            return 0
        got = cur.execute("SELECT max(version) FROM journal_schema_version").fetchone()
    return int(got[0] or 0) if got else 0


def pg_migrate(conn: psycopg.Connection[Any]) -> int:
    """Apply every migration the database lacks (under an advisory lock); the version."""
    for version, sql in PG_MIGRATIONS:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
            conn.execute(
                "CREATE TABLE IF NOT EXISTS journal_schema_version "
                "(version INTEGER PRIMARY KEY, applied_at DOUBLE PRECISION NOT NULL)"
            )
            if _current_version(conn) < version:
                run_migration(version, sql, conn.execute, _RECORD_VERSION)
    return known_version(_current_version(conn), PG_LATEST_VERSION)


# PostgreSQL picks indexes by statistics. Until saf has been analysed (a new journal's
# first minutes, or a restored one before its ANALYZE) it took `state = 'pending'` for
# as selective as `txn_id = ?` and ANDed the saf_age index in: every parked reversal
# read per cancel (5.5 ms with 100,000 parked). `state || ''` tests the same but no
# index serves it, so a cancel finds its row through saf_txn whatever the statistics.
PG = Statements.build(
    pyformat,
    parked_by_txn=PARKED_REVERSAL_SQL.replace("state =", "state || '' =", 1),
    claim_lock=" FOR UPDATE SKIP LOCKED",
)
CANCEL_PARKED_SQL = PG.cancel_parked
CANCEL_SHIFT_PARKED_SQL = PG.cancel_shift_parked


class _Retry(Exception):
    """The fast path cannot tell which write failed: replay the batch write by write."""


class PostgresJournal(BatchWriter):
    """The PostgreSQL backend (see ``JournalBackend``); opening it migrates the schema."""

    def __init__(self, dsn: str, *, readers: int = 4, connect_timeout: float = 10.0) -> None:
        super().__init__()
        self.dsn = dsn
        self.fallbacks = 0  # batches replayed write by write (something in them failed)
        try:
            self._conn = psycopg.connect(dsn, autocommit=True, connect_timeout=int(connect_timeout))
        except psycopg.Error as exc:
            raise JournalError(
                f"cannot connect to the PostgreSQL journal: {type(exc).__name__}"
            ) from None
        try:
            self._version = pg_migrate(self._conn)
            self._pool: ConnectionPool[psycopg.Connection[dict[str, Any]]] = ConnectionPool(
                dsn,
                min_size=1,
                max_size=max(1, readers),
                kwargs={"autocommit": True, "row_factory": dict_row},
                timeout=connect_timeout,
                open=True,
                name="forecourt-journal-readers",
            )
        except psycopg.Error as exc:
            self._conn.close()
            raise _error(exc) from None
        except BaseException:
            self._conn.close()
            raise

    def run_batch(self, writes: Sequence[Sequence[WriteOp]]) -> list[WriteOutcome]:
        if self._conn.closed or self._conn.broken:
            # the server restarted or the network broke: a new connection for this batch
            # (the last batch failed as a whole, so nothing half-done is lost)
            try:
                self._conn = psycopg.connect(self.dsn, autocommit=True, connect_timeout=10)
            except psycopg.Error as exc:
                raise _error(exc) from None
        if any(isinstance(op, DOMAIN_OPS) for ops in writes for op in ops):
            # a domain's operation (the ledger's, ...) reads, decides and writes in
            # turn: not for the pipeline
            outcomes = self._slow(writes)
        else:
            try:
                outcomes = self._fast(writes)
            except _Retry:
                self.fallbacks += 1
                outcomes = self._slow(writes)
        self._commits += 1
        return outcomes

    def _rollback(self) -> None:
        conn = self._conn
        if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            with contextlib.suppress(psycopg.Error):
                conn.execute("ROLLBACK")

    def _fast(self, writes: Sequence[Sequence[WriteOp]]) -> list[WriteOutcome]:
        """Everything in one pipeline; raises _Retry when any write fails."""
        conn = self._conn
        staged: list[list[tuple[WriteOp, apply.Cursor | None]]] = []
        try:
            try:
                with conn.pipeline() as pipeline:
                    conn.execute("BEGIN")
                    for ops in writes:
                        staged.append([(op, self._send(op)) for op in ops])
                    pipeline.sync()
                outcomes: list[WriteOutcome] = []
                for ops_staged in staged:
                    outcomes.append([apply.result(op, cur) for op, cur in ops_staged])
            except (psycopg.Error, JournalError):
                self._rollback()
                raise _Retry from None
            self._commit_with(self._conn.execute)
        except _Retry:
            raise
        except BaseException:
            self._rollback()
            raise
        return outcomes

    def _slow(self, writes: Sequence[Sequence[WriteOp]]) -> list[WriteOutcome]:
        conn = self._conn
        try:
            conn.execute("BEGIN")
            outcomes = apply.each_write_alone(
                writes,
                lambda ops: [apply.result(op, self._send(op)) for op in ops],
                conn.execute,
                psycopg.Error,
                _error,
            )
            self._commit_with(self._conn.execute)
        except BaseException:
            self._rollback()
            raise
        return outcomes

    def _exec(self, sql: str, params: Sequence[object]) -> psycopg.Cursor[Any]:
        cur = self._conn.cursor()
        cur.execute(sql, params)
        return cur

    def _send(self, op: WriteOp) -> apply.Cursor | None:
        """Issue the statement of ``op`` (results are read by ``apply.result``)."""
        match op:
            case ExpireParked():
                # One statement, three effects: erase parked reversals held too long
                # (their sealed payloads kept first when [recon] keep_sealed_days asks:
                # the CTE reads the rows as they were), delete delivered items past
                # retention and kept payloads past erase_at; counts come back as one row.
                keep = ""
                kept: tuple[object, ...] = ()
                if self.keep_sealed is not None:
                    keep, kept = keep_sql(self.keep_sealed, op.now, "floor({})", "%s")
                    keep = " kept AS (" + keep.format(ids="SELECT id FROM erased") + "),"
                return self._exec(
                    "WITH erased AS (UPDATE saf SET state = 'done', payload = ''::bytea,"
                    " last_error = 'expired: held too long'"
                    " WHERE id IN (SELECT id FROM saf WHERE state = 'pending'"
                    " AND created_at < %s AND next_attempt_at > %s LIMIT %s"
                    " FOR UPDATE SKIP LOCKED) RETURNING id),"
                    " deleted AS (DELETE FROM saf WHERE id IN (SELECT id FROM saf"
                    " WHERE state = 'done' AND created_at < %s LIMIT %s FOR UPDATE SKIP LOCKED)"
                    " RETURNING id),"
                    " forgotten AS (DELETE FROM recon_sealed WHERE txn_id IN (SELECT txn_id"
                    " FROM recon_sealed WHERE erase_at < %s LIMIT %s FOR UPDATE SKIP LOCKED)"
                    f" RETURNING txn_id),{keep}"
                    " counts AS (SELECT (SELECT count(*) FROM erased),"
                    " (SELECT count(*) FROM deleted), (SELECT count(*) FROM forgotten))"
                    " SELECT * FROM counts",
                    (
                        op.held_before,
                        op.now + PARKED_HORIZON_S,
                        op.limit,
                        op.done_before,
                        op.limit,
                        op.now,
                        op.limit,
                        *kept,
                    ),
                )
            case CancelShiftParked() if self.keep_sealed is not None:
                shift_keep, shift_kept = keep_sql(self.keep_sealed, time.time(), "floor({})", "%s")
                ids = SHIFT_PARKED_IDS.replace("?", "%s").replace("state =", "state || '' =", 1)
                self._exec(shift_keep.format(ids=ids), (*shift_kept, op.terminal_id, op.shift_id))
                return apply.send(op, PG, self._exec)
            case TakeOverStale():
                # One statement: the conditional UPDATE decides who takes a row (a
                # second survivor finds it no longer `forwarded`), the CTEs log the
                # event and make the parked reversal due in the same snapshot.
                return self._exec(
                    "WITH taken AS ("
                    " UPDATE transactions SET state = 'reversal_pending'"
                    " WHERE state = 'forwarded' AND node <> %s AND forwarded_at < %s"
                    " RETURNING txn_id, node),"
                    " logged AS (INSERT INTO events (txn_id, at, kind, detail)"
                    " SELECT txn_id, %s, 'reversal_pending', %s FROM taken),"
                    " due AS (UPDATE saf SET next_attempt_at = %s, last_error = %s"
                    " WHERE state = 'pending' AND txn_id IN (SELECT txn_id FROM taken))"
                    " SELECT txn_id, node FROM taken ORDER BY txn_id",
                    (
                        op.node,
                        op.forwarded_before,
                        op.now,
                        json.dumps({"taken_over": op.node}),
                        op.now,
                        "in flight when its node stopped; taken over",
                    ),
                )
        return apply.send(op, PG, self._exec, lock=" FOR UPDATE")

    # -- readers and closing

    def open_reader(self) -> PostgresReader:
        return PostgresReader(self._pool)

    def close(self) -> None:
        self._pool.close()
        self._conn.close()


class ConnectionSource(Protocol):
    """A pool, or anything that lends a connection for one call."""

    def connection(self) -> AbstractContextManager[psycopg.Connection[dict[str, Any]]]: ...


class PostgresReader(QueryReader):
    """Reads through the backend's connection pool (a connection per call)."""

    statements = PG

    def __init__(self, pool: ConnectionSource) -> None:
        self._pool = pool

    def close(self) -> None:
        pass  # the pool is the backend's

    def _rows(self, query: str, params: Sequence[object] = ()) -> Sequence[Record]:
        try:
            with self._pool.connection() as conn:
                return conn.execute(query, params).fetchall()
        except psycopg.Error as exc:
            raise _error(exc) from None

    def schema_version(self) -> int:
        try:
            with self._pool.connection() as conn:
                return _current_version(conn)
        except psycopg.Error as exc:
            raise _error(exc) from None
