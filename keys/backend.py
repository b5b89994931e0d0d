"""Two database backends behind one small interface: SQLite and PostgreSQL.

SQL is written once with `?` placeholders. A write transaction is serialised per
owner: SQLite takes the database write lock up front (BEGIN IMMEDIATE);
PostgreSQL locks the owner row (SELECT ... FOR UPDATE). In both, a unique partial
index on (owner, key_type) WHERE state = 'active' makes two active versions of
one key impossible whatever the callers do. Database errors become StoreError
with the driver's class name only (driver messages may quote parameters).
The SQLite file (and its -wal/-shm) is private to its owner (0600, folder 0700)
and zeroes what it deletes, so an erased key block does not linger in free pages.
"""

from __future__ import annotations

import abc
import logging
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from forecourt.keys.errors import StoreConflict, StoreError, StoreNotInitialised
from forecourt.keys.private import SQLITE_SIDECARS, private_dir, private_file

Row = tuple[Any, ...]

log = logging.getLogger("forecourt.keys")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS key_meta (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS key_owners (
    owner TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL
);
CREATE TABLE IF NOT EXISTS key_entries (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL REFERENCES key_owners (owner),
    key_type TEXT NOT NULL,
    algorithm TEXT NOT NULL,
    version INTEGER NOT NULL,
    kcv TEXT NOT NULL,
    state TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    activated_at DOUBLE PRECISION,
    expires_at DOUBLE PRECISION,
    grace_seconds DOUBLE PRECISION NOT NULL,
    retiring_until DOUBLE PRECISION,
    retired_at DOUBLE PRECISION,
    uses BIGINT NOT NULL DEFAULT 0,
    key_block TEXT NOT NULL,
    UNIQUE (owner, key_type, version)
);
CREATE UNIQUE INDEX IF NOT EXISTS key_entries_one_active
    ON key_entries (owner, key_type) WHERE state = 'active';
CREATE UNIQUE INDEX IF NOT EXISTS key_entries_one_pending
    ON key_entries (owner, key_type) WHERE state = 'pending';
CREATE TABLE IF NOT EXISTS key_audit (
    id {serial},
    at DOUBLE PRECISION NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    owner TEXT NOT NULL,
    key_type TEXT,
    old_version INTEGER,
    old_kcv TEXT,
    new_version INTEGER,
    new_kcv TEXT,
    reason TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS key_audit_at ON key_audit (at);
"""


class Tx(abc.ABC):
    """A transaction: run statements, fetch rows.

    `erased` is set by whoever blanks a value that must not survive in the
    files; the backend then drops old copies once the transaction commits.
    """

    erased: bool = False

    @abc.abstractmethod
    def execute(self, sql: str, params: Sequence[object] = ()) -> None: ...

    @abc.abstractmethod
    def query(self, sql: str, params: Sequence[object] = ()) -> list[Row]: ...

    @abc.abstractmethod
    def lock_owner(self, owner: str) -> bool:
        """Serialise writers of `owner`; False if the owner does not exist."""


class Backend(abc.ABC):
    name: str

    @abc.abstractmethod
    @contextmanager
    def write(self) -> Iterator[Tx]: ...

    @abc.abstractmethod
    @contextmanager
    def read(self) -> Iterator[Tx]: ...

    @abc.abstractmethod
    def create_schema(self) -> None: ...

    @abc.abstractmethod
    def close(self) -> None: ...


def _is_unique_violation(exc: BaseException) -> bool:
    if isinstance(exc, sqlite3.IntegrityError):
        return "UNIQUE" in str(exc) or "PRIMARY KEY" in str(exc)
    return getattr(exc, "sqlstate", None) == "23505"


class _SqliteTx(Tx):
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def execute(self, sql: str, params: Sequence[object] = ()) -> None:
        self._conn.execute(sql, tuple(params))

    def query(self, sql: str, params: Sequence[object] = ()) -> list[Row]:
        return list(self._conn.execute(sql, tuple(params)).fetchall())

    def lock_owner(self, owner: str) -> bool:
        # BEGIN IMMEDIATE already holds the database write lock.
        return bool(self.query("SELECT 1 FROM key_owners WHERE owner = ?", (owner,)))


class SqliteBackend(Backend):
    """One connection guarded by a lock; WAL so readers in other processes go on."""

    name = "sqlite"

    def __init__(self, path: Path, create: bool = False) -> None:
        self.path = path
        if not create and not path.exists():
            raise StoreNotInitialised(f"no key store at {path}: run 'forecourt keys init' first")
        try:
            private_dir(path.parent)
            private_file(path, SQLITE_SIDECARS)
            self._conn = sqlite3.connect(
                str(path), isolation_level=None, check_same_thread=False, timeout=30.0
            )
            self._conn.execute("PRAGMA busy_timeout = 30000")
            self._conn.execute("PRAGMA secure_delete = ON")
            self._conn.execute("PRAGMA journal_mode = WAL")
            self._conn.execute("PRAGMA foreign_keys = ON")
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"cannot open key store {path}: {type(exc).__name__}") from None
        self._lock = threading.RLock()

    @contextmanager
    def _tx(self, begin: str) -> Iterator[Tx]:
        with self._lock:
            try:
                self._conn.execute(begin)
            except sqlite3.Error as exc:
                raise StoreError(f"key store busy or broken: {type(exc).__name__}") from None
            tx = _SqliteTx(self._conn)
            try:
                yield tx
            except BaseException as exc:
                self._conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    if _is_unique_violation(exc):
                        raise StoreConflict("a concurrent change got there first; retry") from None
                    raise StoreError(f"key store error: {type(exc).__name__}") from None
                raise
            else:
                self._conn.execute("COMMIT")
                if tx.erased:
                    self._scrub()

    @contextmanager
    def write(self) -> Iterator[Tx]:
        with self._tx("BEGIN IMMEDIATE") as tx:
            yield tx

    @contextmanager
    def read(self) -> Iterator[Tx]:
        with self._tx("BEGIN") as tx:
            yield tx

    def create_schema(self) -> None:
        sql = _SCHEMA.format(serial="INTEGER PRIMARY KEY AUTOINCREMENT")
        with self._lock:
            try:
                self._conn.executescript(sql)
            except sqlite3.Error as exc:
                raise StoreError(f"cannot create key schema: {type(exc).__name__}") from None

    def _scrub(self) -> None:
        """Checkpoint and truncate the WAL: its older frames still hold erased blocks
        (secure_delete has zeroed them in the database pages)."""
        try:
            busy = self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
        except sqlite3.Error as exc:
            busy = type(exc).__name__
        if busy:  # the erase is committed; the next checkpoint overwrites the frames
            log.warning("key store WAL not truncated after an erase (%s): readers busy", busy)

    def close(self) -> None:
        with self._lock:
            self._conn.close()


class _PgTx(Tx):
    def __init__(self, cur: Any) -> None:
        self._cur = cur

    def execute(self, sql: str, params: Sequence[object] = ()) -> None:
        self._cur.execute(sql.replace("?", "%s"), tuple(params))

    def query(self, sql: str, params: Sequence[object] = ()) -> list[Row]:
        self._cur.execute(sql.replace("?", "%s"), tuple(params))
        return list(self._cur.fetchall())

    def lock_owner(self, owner: str) -> bool:
        return bool(self.query("SELECT 1 FROM key_owners WHERE owner = ? FOR UPDATE", (owner,)))


_CONNECT_REASONS = (
    "Connection refused",
    "timeout expired",
    "No route to host",
    "Network is unreachable",
    "could not translate host name",
    "password authentication failed",
    "no password supplied",
    "does not exist",
    "too many clients",
    "the database system is starting up",
    "the database system is shutting down",
    "SSL",
)


def dsn_place(dsn: str) -> str:
    """`user@host:port/dbname` of a DSN, never its password (for an operator's line)."""
    from psycopg.conninfo import conninfo_to_dict

    try:
        parts = conninfo_to_dict(dsn)
    except Exception:
        return "the configured database (the DSN does not parse)"
    user = f"{parts['user']}@" if parts.get("user") else ""
    host = parts.get("host") or "localhost"
    return f"{user}{host}:{parts.get('port') or 5432}/{parts.get('dbname') or ''}"


def connect_reason(exc: BaseException) -> str:
    """Why a PostgreSQL connection failed, from a fixed list of phrases (the driver's
    full message may quote the DSN), else the error's class."""
    text = str(exc)
    for phrase in _CONNECT_REASONS:
        if phrase.lower() in text.lower():
            return phrase
    state = getattr(exc, "sqlstate", None)
    return type(exc).__name__ + (f" ({state})" if state else "")


class PostgresBackend(Backend):
    """One psycopg 3 connection guarded by a lock (the switch calls from a thread pool)."""

    name = "postgresql"

    def __init__(self, dsn: str) -> None:
        import psycopg

        self._psycopg = psycopg
        try:
            self._conn = psycopg.connect(dsn, autocommit=True, connect_timeout=10)
        except psycopg.Error as exc:
            raise StoreError(
                f"key store: cannot connect to PostgreSQL at {dsn_place(dsn)}:"
                f" {connect_reason(exc)} (is it running? check `database` in the config)"
            ) from None
        self._lock = threading.RLock()

    @contextmanager
    def _tx(self) -> Iterator[Tx]:
        psycopg = self._psycopg
        with self._lock:
            try:
                with self._conn.transaction(), self._conn.cursor() as cur:
                    yield _PgTx(cur)
            except psycopg.Error as exc:
                if _is_unique_violation(exc):
                    raise StoreConflict("a concurrent change got there first; retry") from None
                raise StoreError(f"key store error: {type(exc).__name__}") from None

    @contextmanager
    def write(self) -> Iterator[Tx]:
        with self._tx() as tx:
            yield tx

    @contextmanager
    def read(self) -> Iterator[Tx]:
        with self._tx() as tx:
            yield tx

    def create_schema(self) -> None:
        sql = _SCHEMA.format(serial="BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY")
        with self._tx() as tx:
            tx.execute("SELECT pg_advisory_xact_lock(8583000001)")
            for stmt in sql.split(";"):
                if stmt.strip():
                    tx.execute(stmt)

    def close(self) -> None:
        with self._lock:
            self._conn.close()
