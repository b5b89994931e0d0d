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

Database errors are reported by class name and SQLSTATE only: driver messages
may quote parameters.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

import psycopg
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
from psycopg.rows import dict_row, tuple_row
from psycopg_pool import ConnectionPool

_TXN_STATES = ", ".join(f"'{s.value}'" for s in TxnState)
_SAF_STATES = ", ".join(f"'{s.value}'" for s in SafState)
_MIGRATION_LOCK = 8583000002  # pg_advisory_xact_lock key: one node migrates at a time

# Versioned like the SQLite MIGRATIONS (same version numbers, same tables); never
# edit a released migration, add the next version.
PG_MIGRATIONS: list[tuple[int, str]] = [
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
            amount          BIGINT,
            approved_amount BIGINT,
            currency        TEXT,
            masked_pan      TEXT,
            processing_code TEXT,
            route           TEXT,
            acquirer_stan   TEXT,
            rrn             TEXT,
            auth_code       TEXT,
            original_txn_id TEXT,
            shift_id        TEXT,
            received_at     DOUBLE PRECISION NOT NULL,
            forwarded_at    DOUBLE PRECISION,
            answered_at     DOUBLE PRECISION,
            host_ms         DOUBLE PRECISION,
            switch_ms       DOUBLE PRECISION,
            response_raw    BYTEA,
            flags           TEXT NOT NULL DEFAULT ''
        );
        CREATE INDEX transactions_terminal_key
            ON transactions (terminal_id, stan, mti_class, received_at);
        CREATE INDEX transactions_state ON transactions (state);
        CREATE INDEX transactions_shift ON transactions (terminal_id, shift_id);
        CREATE INDEX transactions_original ON transactions (original_txn_id);
        CREATE INDEX transactions_received ON transactions (received_at);
        CREATE TABLE events (
            id      BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            txn_id  TEXT NOT NULL,
            at      DOUBLE PRECISION NOT NULL,
            kind    TEXT NOT NULL,
            detail  TEXT
        );
        CREATE INDEX events_txn ON events (txn_id, id);
        CREATE TABLE saf (
            id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            txn_id          TEXT NOT NULL,
            link            TEXT NOT NULL,
            mti             TEXT NOT NULL,
            payload         BYTEA NOT NULL,
            attempts        INTEGER NOT NULL DEFAULT 0,
            next_attempt_at DOUBLE PRECISION NOT NULL,
            state           TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ({_SAF_STATES})),
            claimed_by      TEXT,
            lease_until     DOUBLE PRECISION,
            created_at      DOUBLE PRECISION NOT NULL,
            last_error      TEXT
        );
        CREATE INDEX saf_due ON saf (state, next_attempt_at);
        CREATE INDEX saf_txn ON saf (txn_id);
        CREATE TABLE shifts (
            terminal_id TEXT NOT NULL,
            shift_id    TEXT NOT NULL,
            opened_at   DOUBLE PRECISION NOT NULL,
            closed_at   DOUBLE PRECISION,
            totals      TEXT,
            in_balance  BOOLEAN,
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
        """,
    ),
    (
        3,
        # SAF housekeeping picks parked reversals and delivered items by age
        """
        CREATE INDEX IF NOT EXISTS saf_age ON saf (state, created_at);
        """,
    ),
]

PG_LATEST_VERSION = PG_MIGRATIONS[-1][0]


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
                for stmt in sql.split(";"):
                    if stmt.strip():
                        conn.execute(stmt)
                conn.execute(
                    "INSERT INTO journal_schema_version (version, applied_at) VALUES (%s, %s)",
                    (version, time.time()),
                )
    version = _current_version(conn)
    if version > PG_LATEST_VERSION:
        raise JournalError(
            f"journal schema version {version} is newer than this forecourt ({PG_LATEST_VERSION})"
        )
    return version


def _db_value(name: str, value: object) -> object:
    if name == "flags":
        return ",".join(value) if isinstance(value, tuple | list) else (value or "")
    if name == "response_raw" and isinstance(value, bytearray | memoryview):
        return bytes(value)
    return value


def _row(r: dict[str, Any]) -> JournalRow:
    values = {k: r[k] for k in COLUMNS}
    if values["response_raw"] is not None:
        values["response_raw"] = bytes(values["response_raw"])
    return JournalRow(**values)


_INSERT_TXN = (
    f"INSERT INTO transactions ({', '.join(COLUMNS)}) VALUES ({', '.join(['%s'] * len(COLUMNS))})"
)
# PostgreSQL picks indexes by statistics. Until saf has been analysed (a new journal's
# first minutes, or a restored one before its ANALYZE) it took `state = 'pending'` for
# as selective as `txn_id = ?` and ANDed the saf_age index in: every parked reversal
# read per cancel (5.5 ms with 100,000 parked). `state || ''` tests the same but no
# index serves it, so a cancel finds its row through saf_txn whatever the statistics.
_PARKED_BY_TXN = PARKED_REVERSAL_SQL.replace("state =", "state || '' =", 1)
CANCEL_PARKED_SQL = (
    "UPDATE saf SET state = 'done', payload = ''::bytea, last_error = %s "
    f"WHERE txn_id = %s AND {_PARKED_BY_TXN}"
)
CANCEL_SHIFT_PARKED_SQL = (
    "UPDATE saf SET state = 'done', payload = ''::bytea, last_error = 'cancelled: shift closed' "
    f"WHERE {_PARKED_BY_TXN} AND txn_id IN (SELECT txn_id FROM transactions "
    "WHERE terminal_id = %s AND shift_id = %s AND state = 'approved')"
)
_SAF_COLUMNS = (
    "id, txn_id, link, mti, attempts, next_attempt_at, state, claimed_by, lease_until, "
    "created_at, last_error"
)
_SAF_FIELDS = tuple(c.strip() for c in _SAF_COLUMNS.split(","))


class _Retry(Exception):
    """The fast path cannot tell which write failed: replay the batch write by write."""


class PostgresJournal:
    """The PostgreSQL backend (see ``JournalBackend``); opening it migrates the schema."""

    def __init__(self, dsn: str, *, readers: int = 4, connect_timeout: float = 10.0) -> None:
        self.dsn = dsn
        self._commits = 0
        self.fallbacks = 0  # batches replayed write by write (something in them failed)
        self.before_commit: Callable[[], None] | None = None
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

    @property
    def commits(self) -> int:
        return self._commits

    def schema_version(self) -> int:
        return self._version

    def open_reader(self) -> PostgresReader:
        return PostgresReader(self._pool)

    def close(self) -> None:
        self._pool.close()
        self._conn.close()

    # -- the writer

    def run_batch(self, writes: Sequence[Sequence[WriteOp]]) -> list[WriteOutcome]:
        if self._conn.closed or self._conn.broken:
            # the server restarted or the network broke: a new connection for this batch
            # (the last batch failed as a whole, so nothing half-done is lost)
            try:
                self._conn = psycopg.connect(self.dsn, autocommit=True, connect_timeout=10)
            except psycopg.Error as exc:
                raise _error(exc) from None
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

    def _commit(self) -> None:
        if self.before_commit is not None:
            self.before_commit()
        self._conn.execute("COMMIT")

    def _fast(self, writes: Sequence[Sequence[WriteOp]]) -> list[WriteOutcome]:
        """Everything in one pipeline; raises _Retry when any write fails."""
        conn = self._conn
        staged: list[list[tuple[WriteOp, psycopg.Cursor[Any] | None]]] = []
        try:
            try:
                with conn.pipeline() as pipeline:
                    conn.execute("BEGIN")
                    for ops in writes:
                        staged.append([(op, self._send(op)) for op in ops])
                    pipeline.sync()
                outcomes: list[WriteOutcome] = []
                for ops_staged in staged:
                    outcomes.append([self._result(op, cur) for op, cur in ops_staged])
            except (psycopg.Error, JournalError):
                self._rollback()
                raise _Retry from None
            self._commit()
        except _Retry:
            raise
        except BaseException:
            self._rollback()
            raise
        return outcomes

    def _slow(self, writes: Sequence[Sequence[WriteOp]]) -> list[WriteOutcome]:
        conn = self._conn
        outcomes: list[WriteOutcome] = []
        try:
            conn.execute("BEGIN")
            for ops in writes:
                conn.execute("SAVEPOINT one_write")
                try:
                    results = [self._result(op, self._send(op)) for op in ops]
                except (psycopg.Error, JournalError) as exc:
                    conn.execute("ROLLBACK TO SAVEPOINT one_write")
                    conn.execute("RELEASE SAVEPOINT one_write")
                    outcomes.append(exc if isinstance(exc, JournalError) else _error(exc))
                else:
                    conn.execute("RELEASE SAVEPOINT one_write")
                    outcomes.append(results)
            self._commit()
        except BaseException:
            self._rollback()
            raise
        return outcomes

    def _exec(self, sql: str, params: Sequence[object]) -> psycopg.Cursor[Any]:
        cur = self._conn.cursor()
        cur.execute(sql, params)
        return cur

    def _send(self, op: WriteOp) -> psycopg.Cursor[Any] | None:
        """Issue the statement of ``op`` (results are read by ``_result``)."""
        match op:
            case InsertTransaction(row=row):
                return self._exec(_INSERT_TXN, [_db_value(n, getattr(row, n)) for n in COLUMNS])
            case UpdateTransaction(txn_id=txn_id, changes=changes):
                names = [n for n in changes if n in UPDATABLE]
                if len(names) != len(changes):
                    raise JournalError("update: unknown or read-only column")
                if not names:
                    return None
                sets = ", ".join(f"{n} = %s" for n in names)
                return self._exec(
                    f"UPDATE transactions SET {sets} WHERE txn_id = %s",
                    [*(_db_value(n, changes[n]) for n in names), txn_id],
                )
            case AddEvent(event=ev):
                return self._exec(
                    "INSERT INTO events (txn_id, at, kind, detail) VALUES (%s, %s, %s, %s)",
                    (ev.txn_id, ev.at, ev.kind, ev.detail),
                )
            case EnqueueSaf():
                return self._exec(
                    "INSERT INTO saf (txn_id, link, mti, payload, next_attempt_at, created_at) "
                    "VALUES (%s, %s, %s, %s, %s, %s) RETURNING id",
                    (
                        op.txn_id,
                        op.link,
                        op.mti,
                        op.sealed_payload,
                        op.next_attempt_at,
                        op.created_at,
                    ),
                )
            case ClaimSaf():
                link_sql = "AND link = %s" if op.link is not None else ""
                params: list[object] = [op.node, op.now + op.lease_s, op.now, op.now]
                if op.link is not None:
                    params.append(op.link)
                params.append(op.limit)
                return self._exec(
                    "UPDATE saf SET state = 'in_flight', claimed_by = %s, lease_until = %s, "
                    "attempts = attempts + 1 WHERE id IN (SELECT id FROM saf WHERE "
                    "((state = 'pending' AND next_attempt_at <= %s) OR "
                    f"(state = 'in_flight' AND lease_until <= %s)) {link_sql} "
                    "ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED) "
                    "RETURNING id, txn_id, link, mti, payload, attempts, created_at, last_error",
                    params,
                )
            case CompleteSaf(item_id=item_id):
                return self._exec(
                    "UPDATE saf SET state = 'done', payload = ''::bytea, claimed_by = NULL, "
                    "lease_until = NULL WHERE id = %s",
                    (item_id,),
                )
            case ExpireParked():
                # One statement, two effects: erase parked reversals held too long,
                # delete delivered items past retention; counts come back as one row.
                return self._exec(
                    "WITH erased AS (UPDATE saf SET state = 'done', payload = ''::bytea,"
                    " last_error = 'expired: held too long'"
                    " WHERE id IN (SELECT id FROM saf WHERE state = 'pending'"
                    " AND created_at < %s AND next_attempt_at > %s LIMIT %s"
                    " FOR UPDATE SKIP LOCKED) RETURNING id),"
                    " deleted AS (DELETE FROM saf WHERE id IN (SELECT id FROM saf"
                    " WHERE state = 'done' AND created_at < %s LIMIT %s FOR UPDATE SKIP LOCKED)"
                    " RETURNING id)"
                    " SELECT (SELECT count(*) FROM erased), (SELECT count(*) FROM deleted)",
                    (
                        op.held_before,
                        op.now + PARKED_HORIZON_S,
                        op.limit,
                        op.done_before,
                        op.limit,
                    ),
                )
            case CancelParked():
                return self._exec(CANCEL_PARKED_SQL, (f"cancelled: {op.reason}", op.txn_id))
            case CancelShiftParked():
                return self._exec(CANCEL_SHIFT_PARKED_SQL, (op.terminal_id, op.shift_id))
            case RetrySaf():
                return self._exec(
                    "UPDATE saf SET state = 'pending', last_error = %s, next_attempt_at = %s, "
                    "claimed_by = NULL, lease_until = NULL WHERE id = %s",
                    (op.error, op.next_attempt_at, op.item_id),
                )
            case FlagSaf():
                return self._exec(
                    "UPDATE saf SET state = 'flagged', last_error = coalesce(%s, last_error), "
                    "claimed_by = NULL, lease_until = NULL WHERE id = %s",
                    (op.error, op.item_id),
                )
            case OpenShift():
                return self._exec(
                    "INSERT INTO shifts (terminal_id, shift_id, opened_at) VALUES (%s, %s, %s) "
                    "ON CONFLICT (terminal_id, shift_id) DO NOTHING",
                    (op.terminal_id, op.shift_id, op.at),
                )
            case CloseShift():
                return self._exec(
                    "INSERT INTO shifts (terminal_id, shift_id, opened_at, closed_at, totals, "
                    "in_balance) VALUES (%s, %s, %s, %s, %s, %s) "
                    "ON CONFLICT (terminal_id, shift_id) DO UPDATE SET "
                    "closed_at = excluded.closed_at, totals = excluded.totals, "
                    "in_balance = excluded.in_balance",
                    (
                        op.terminal_id,
                        op.shift_id,
                        op.at,
                        op.at,
                        json.dumps(dict(op.totals), sort_keys=True),
                        bool(op.in_balance),
                    ),
                )
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
        raise JournalError(f"unknown journal operation {type(op).__name__}")

    @staticmethod
    def _result(op: WriteOp, cur: psycopg.Cursor[Any] | None) -> object:
        match op:
            case UpdateTransaction(txn_id=txn_id):
                if cur is not None and cur.rowcount == 0:
                    raise UnknownTransaction(f"no transaction {txn_id}")
                return None
            case EnqueueSaf():
                assert cur is not None
                got = cur.fetchone()
                assert got is not None
                return int(got[0])
            case ClaimSaf():
                assert cur is not None
                return sorted(
                    (int(r[0]), r[1], r[2], r[3], bytes(r[4]), int(r[5]), float(r[6]), r[7])
                    for r in cur.fetchall()
                )
            case (
                CompleteSaf(item_id=item_id) | RetrySaf(item_id=item_id) | FlagSaf(item_id=item_id)
            ):
                if cur is not None and cur.rowcount == 0:
                    raise JournalError(f"no SAF item {item_id}")
                return None
            case TakeOverStale():
                assert cur is not None
                return [(str(r[0]), str(r[1])) for r in cur.fetchall()]
            case CancelParked() | CancelShiftParked():
                assert cur is not None
                return int(cur.rowcount)
            case ExpireParked():
                assert cur is not None
                counts = cur.fetchone()
                assert counts is not None
                return (int(counts[0]), int(counts[1]))
        return None


class ConnectionSource(Protocol):
    """A pool, or anything that lends a connection for one call."""

    def connection(self) -> AbstractContextManager[psycopg.Connection[dict[str, Any]]]: ...


class PostgresReader:
    """Reads through the backend's connection pool (a connection per call)."""

    def __init__(self, pool: ConnectionSource) -> None:
        self._pool = pool

    def close(self) -> None:
        pass  # the pool is the backend's

    def _rows(self, sql: str, params: Sequence[object] = ()) -> list[dict[str, Any]]:
        try:
            with self._pool.connection() as conn:
                return conn.execute(sql, params).fetchall()
        except psycopg.Error as exc:
            raise _error(exc) from None

    def schema_version(self) -> int:
        try:
            with self._pool.connection() as conn:
                return _current_version(conn)
        except psycopg.Error as exc:
            raise _error(exc) from None

    def get(self, txn_id: str) -> JournalRow | None:
        rows = self._rows("SELECT * FROM transactions WHERE txn_id = %s", (txn_id,))
        return _row(rows[0]) if rows else None

    def find_by_terminal_key(
        self, mti_class: str, terminal_id: str, stan: str
    ) -> JournalRow | None:
        rows = self._rows(
            "SELECT * FROM transactions WHERE terminal_id = %s AND stan = %s AND mti_class = %s "
            "ORDER BY received_at DESC LIMIT 1",
            (terminal_id, stan, mti_class),
        )
        return _row(rows[0]) if rows else None

    def list_transactions(
        self, limit: int, terminal: str | None, state: str | None
    ) -> list[JournalRow]:
        where: list[str] = []
        params: list[object] = []
        if terminal is not None:
            where.append("terminal_id = %s")
            params.append(terminal)
        if state is not None:
            where.append("state = %s")
            params.append(state)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        rows = self._rows(
            f"SELECT * FROM transactions {clause} ORDER BY received_at DESC LIMIT %s",
            (*params, limit),
        )
        return [_row(r) for r in rows]

    def recover(self, node: str | None) -> list[JournalRow]:
        sql = "SELECT * FROM transactions WHERE state IN ('received', 'forwarded')"
        params: tuple[object, ...] = ()
        if node is not None:
            sql += " AND node = %s"
            params = (node,)
        return [_row(r) for r in self._rows(sql + " ORDER BY received_at", params)]

    def events(self, txn_id: str) -> list[Event]:
        rows = self._rows(
            "SELECT txn_id, at, kind, detail FROM events WHERE txn_id = %s ORDER BY id", (txn_id,)
        )
        return [Event(r["txn_id"], r["at"], r["kind"], r["detail"]) for r in rows]

    def saf_stats(self) -> SafStats:
        # As the SQLite reader: a reversal parked for an answered transaction is
        # not work to do, it is counted apart.
        horizon = time.time() + PARKED_HORIZON_S
        counts = {
            r["s"]: int(r["n"])
            for r in self._rows(
                "SELECT CASE WHEN state = 'pending' AND next_attempt_at > %s THEN 'parked'"
                " ELSE state END AS s, count(*) AS n FROM saf GROUP BY 1",
                (horizon,),
            )
        }
        live = (
            "state IN ('pending', 'in_flight') AND NOT (state = 'pending' AND next_attempt_at > %s)"
        )
        oldest = self._rows(f"SELECT min(created_at) AS m FROM saf WHERE {live}", (horizon,))[0][
            "m"
        ]
        by_link = {
            r["link"]: int(r["n"])
            for r in self._rows(
                f"SELECT link, count(*) AS n FROM saf WHERE {live} GROUP BY link", (horizon,)
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
        return [(r["terminal_id"], r["shift_id"]) for r in rows]

    def saf_entries(self, state: str | None, limit: int) -> list[SafEntry]:
        if state is None:
            rows = self._rows(f"SELECT {_SAF_COLUMNS} FROM saf ORDER BY id LIMIT %s", (limit,))
        else:
            rows = self._rows(
                f"SELECT {_SAF_COLUMNS} FROM saf WHERE state = %s ORDER BY id LIMIT %s",
                (state, limit),
            )
        return [SafEntry(**{k: r[k] for k in _SAF_FIELDS}) for r in rows]

    def saf_entries_of(self, txn_ids: Sequence[str]) -> list[SafEntry]:
        return saf_entries_of_txns(self._rows, "%s", txn_ids)

    def totals(self, terminal_id: str, shift_id: str) -> ShiftTotals:
        rows = self._rows(
            """
            SELECT currency, category, count(*) AS n, coalesce(sum(amt), 0)::bigint AS total
            FROM (
                SELECT coalesce(currency, '') AS currency,
                    CASE
                        WHEN mti_class = '2' AND state = 'approved'
                             AND substr(coalesce(processing_code, '00'), 1, 2) = '20'
                             THEN 'credit'
                        WHEN mti_class = '2' AND state = 'approved' THEN 'debit'
                        WHEN mti_class = '2' AND state = 'reversed' THEN 'reversed'
                        WHEN mti_class = '1' AND state = 'approved' THEN 'authorised'
                        WHEN mti_class IN ('1', '2') AND state = 'declined' THEN 'declined'
                    END AS category,
                    coalesce(approved_amount, amount, 0) AS amt
                FROM transactions
                WHERE terminal_id = %s AND shift_id = %s
            ) t
            WHERE category IS NOT NULL
            GROUP BY 1, 2
            ORDER BY 2, 1
            """,
            (terminal_id, shift_id),
        )
        lines = tuple(
            TotalsLine(r["currency"], r["category"], int(r["n"]), int(r["total"])) for r in rows
        )
        return ShiftTotals(terminal_id, shift_id, lines)

    def shift(self, terminal_id: str, shift_id: str) -> ShiftRecord | None:
        rows = self._rows(
            "SELECT * FROM shifts WHERE terminal_id = %s AND shift_id = %s",
            (terminal_id, shift_id),
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
            in_balance=r["in_balance"],
        )
