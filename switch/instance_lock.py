"""One `forecourt serve` per SQLite data directory, one per node name on PostgreSQL.

Why: at start a switch runs crash recovery, which reverses every transaction its
node left `forwarded`. A second process started by mistake on a live node's
journal would reverse transactions the first still waits on at the host. So the
lock is taken before anything else — before the key store is opened, before
recovery, before a listener or a journal write — and held for the life of the
process; a second instance is refused with one line and touches nothing.

- **SQLite** (`database` unset): `fcntl.flock(LOCK_EX | LOCK_NB)` on
  `<data_dir>/forecourt.lock` (created 0600; the holder's pid written in it). One
  data directory is one node, whatever the `node` name. `serve --workers N` takes
  it in the supervisor and hands the open file to each worker (`pass_fds`): the
  lock is one open file description, held while any of them lives, so a worker
  the supervisor outlives or a supervisor killed under its workers still keeps
  others out. The kernel drops it when the last holder dies, SIGKILL included.
- **PostgreSQL**: a session-level `pg_try_advisory_lock` keyed by a 64-bit hash of
  the node name, on a dedicated connection held open for the life of the process:
  nodes with different names run side by side; a second process with the same name
  is refused; the lock goes when the holder's connection closes (TCP keepalives on
  both ends bound how long a vanished holder keeps it).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import attrs
import psycopg
import structlog
import trio
from forecourt.keys.backend import connect_reason, dsn_place
from forecourt.switch.config import SwitchConfig

log = structlog.get_logger("forecourt.instance")

LOCK_FILE = "forecourt.lock"
_FIX_DIR = "stop it first, or give this one another data_dir"
_FIX_NODE = "stop it first, or give this one another node name"
# a vanished holder's session (power cut, cable) ends within about idle + interval * count
_SERVER_KEEPALIVE = (
    "SET tcp_keepalives_idle = 10",
    "SET tcp_keepalives_interval = 5",
    "SET tcp_keepalives_count = 3",
)


class InstanceLockError(Exception):
    """The instance lock could not be taken; str() is the operator's one line."""


class InstanceInUse(InstanceLockError):
    """Another live `forecourt serve` holds this data directory or node name."""


def node_lock_key(node: str) -> int:
    """The advisory lock key of a node name: 64 bits of SHA-256 (hashtext is 32)."""
    digest = hashlib.sha256(b"forecourt node " + node.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@attrs.define
class InstanceLock:
    """A held instance lock: an open lock file, or the connection holding the advisory lock."""

    what: str
    fd: int | None = None
    conn: psycopg.Connection[tuple[object, ...]] | None = None
    dsn: str | None = None
    node: str | None = None

    async def watch(self, every_s: float = 5.0) -> None:
        """PostgreSQL: a lock connection that broke took the lock with it: take it again.

        Raises `InstanceInUse` when another process took it meanwhile: two processes
        must not run one node, so this one stops.
        """
        if self.conn is None:
            return  # a flock cannot be lost while the file is open
        while True:
            await trio.sleep(every_s)
            if await trio.to_thread.run_sync(self._alive):
                continue
            log.error("instance_lock_lost", held=self.what)
            while not await trio.to_thread.run_sync(self._take_again):
                await trio.sleep(every_s)
            log.warning("instance_lock_taken_again", held=self.what)

    def _alive(self) -> bool:
        assert self.conn is not None
        try:
            self.conn.execute("SELECT 1")
        except psycopg.Error:
            self.conn.close()
            return False
        return True

    def _take_again(self) -> bool:
        assert self.dsn is not None and self.node is not None
        try:
            self.conn = lock_node(self.dsn, self.node).conn
        except InstanceInUse:
            raise
        except InstanceLockError:
            return False  # the database is still away: try again later
        return True

    def release(self) -> None:
        # never LOCK_UN: the description may be shared with workers that still run
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        if self.conn is not None:
            with contextlib.suppress(psycopg.Error):
                self.conn.close()
            self.conn = None


def lock_data_dir(data_dir: Path, inherited_fd: int | None = None) -> InstanceLock:
    """Hold `<data_dir>/forecourt.lock`, or check that `inherited_fd` already does."""
    path = data_dir / LOCK_FILE
    what = f"data directory {data_dir}"
    if inherited_fd is not None:
        return _adopt(path, what, inherited_fd)
    try:
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise InstanceLockError(f"cannot open {path}: {exc.strerror}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            holder = _pid_in(path)
            raise InstanceInUse(
                f"{what} is in use by another forecourt serve ({holder}) — {_FIX_DIR}"
            ) from None
        raise InstanceLockError(f"cannot lock {path}: {exc.strerror}") from None
    with contextlib.suppress(OSError):
        os.fchmod(fd, 0o600)
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return InstanceLock(what, fd=fd)


def _adopt(path: Path, what: str, fd: int) -> InstanceLock:
    """A worker's lock: the supervisor's open lock file, proven to be that file and held."""
    try:
        mine, theirs = os.fstat(fd), os.stat(path, follow_symlinks=False)
        if (mine.st_dev, mine.st_ino) != (theirs.st_dev, theirs.st_ino):
            raise InstanceLockError(f"inherited lock fd {fd} is not {path}")
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # a no-op on the holder's description
    except BlockingIOError:
        raise InstanceInUse(
            f"{what} is in use by another forecourt serve ({_pid_in(path)}) — {_FIX_DIR}"
        ) from None
    except OSError as exc:
        raise InstanceLockError(f"cannot use inherited lock fd {fd}: {exc.strerror}") from None
    os.set_inheritable(fd, False)
    return InstanceLock(what, fd=fd)


def _pid_in(path: Path) -> str:
    try:
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        text = ""
    return f"pid {text}" if text.isdigit() else "pid unknown"


def lock_node(dsn: str, node: str) -> InstanceLock:
    """Hold the session advisory lock of `node` on a connection of its own."""
    what = f"node {node!r}"
    name = f"forecourt serve pid {os.getpid()} on {socket.gethostname()}"[:63]
    key = node_lock_key(node)
    try:
        conn = psycopg.connect(
            dsn,
            autocommit=True,
            connect_timeout=10,
            application_name=name,
            keepalives=1,
            keepalives_idle=10,
            keepalives_interval=5,
            keepalives_count=3,
        )
    except psycopg.Error as exc:
        raise InstanceLockError(
            f"cannot reach the database at {dsn_place(dsn)} to lock {what}:"
            f" {connect_reason(exc)} (is PostgreSQL running there? check `database`)"
        ) from None
    try:
        for setting in _SERVER_KEEPALIVE:
            conn.execute(setting)
        row = conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()
        if row is not None and row[0] is True:
            return InstanceLock(what, conn=conn, dsn=dsn, node=node)
        holder = _pg_holder(conn, key)
    except psycopg.Error as exc:
        conn.close()
        raise InstanceLockError(f"cannot lock {what}: {_pg_error(exc)}") from None
    conn.close()
    raise InstanceInUse(
        f"{what} is in use by another forecourt serve on this database ({holder}) — {_FIX_NODE}"
    )


def _pg_holder(conn: psycopg.Connection[tuple[object, ...]], key: int) -> str:
    """Who holds the key, from its session's application_name (best effort)."""
    unsigned = key & 0xFFFF_FFFF_FFFF_FFFF
    row = conn.execute(
        "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
        " WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1"
        " AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        " AND l.classid::bigint = %s AND l.objid::bigint = %s",
        (unsigned >> 32, unsigned & 0xFFFF_FFFF),
    ).fetchone()
    name = str(row[0]) if row is not None and row[0] else ""
    prefix = "forecourt serve "
    return name[len(prefix) :] if name.startswith(prefix) else "pid unknown"


def _pg_error(exc: psycopg.Error) -> str:
    # the driver's message may quote the DSN or parameters: class and SQLSTATE only
    state = getattr(exc, "sqlstate", None)
    return type(exc).__name__ + (f" ({state})" if state else "")


def take_instance_lock(config: SwitchConfig, inherited_fd: int | None = None) -> InstanceLock:
    """The lock this configuration's switch must hold: its data directory, or its node."""
    if config.database is None:
        return lock_data_dir(config.data_dir, inherited_fd)
    return lock_node(config.database, config.node)


@contextlib.asynccontextmanager
async def instance_held(
    config: SwitchConfig, inherited_fd: int | None = None
) -> AsyncIterator[InstanceLock]:
    """Hold the instance lock for the body; raise `InstanceInUse` before it otherwise."""
    lock = await trio.to_thread.run_sync(take_instance_lock, config, inherited_fd)
    log.info("instance_locked", held=lock.what)
    try:
        yield lock
    finally:
        lock.release()
