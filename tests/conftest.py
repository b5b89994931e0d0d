"""Shared fixtures.

PostgreSQL: `postgres_dsn` (session scope, one throwaway cluster per xdist
worker) starts the machine's own PostgreSQL binaries in a temporary directory and
yields a DSN of its `postgres` database; `postgres_db` (function scope) yields
the DSN of a fresh, empty database in that cluster, so tests never see each
other's tables. Usable by any part (keys, journal, SAF).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

_PG_USER_FALLBACK = "forecourt-pg"


def _pg_bindir() -> Path | None:
    initdb = shutil.which("initdb")
    if initdb and shutil.which("pg_ctl"):
        return Path(os.path.realpath(initdb)).parent
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"),
        key=lambda p: int(p.split("/")[-2]) if p.split("/")[-2].isdigit() else 0,
    )
    for c in reversed(candidates):
        if os.path.exists(os.path.join(c, "initdb")):
            return Path(c)
    return None


def _pg_user() -> str | None:
    """The unprivileged user to run PostgreSQL as when we are root (it refuses root)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", _PG_USER_FALLBACK):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    subprocess.run(
        [
            "useradd",
            "--system",
            "--no-create-home",
            "--shell",
            "/usr/sbin/nologin",
            _PG_USER_FALLBACK,
        ],
        check=True,
        capture_output=True,
    )
    return _PG_USER_FALLBACK


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run(cmd: list[str], user: str | None) -> None:
    if user is not None:
        cmd = ["runuser", "-u", user, "--", *cmd]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if res.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed ({res.returncode}): {res.stderr.strip()[-500:]}")


@pytest.fixture(scope="session")
def postgres_dsn() -> Iterator[str]:
    bindir = _pg_bindir()
    if bindir is None:
        pytest.fail(
            "PostgreSQL binaries (initdb, pg_ctl) not found on PATH or under /usr/lib/postgresql"
        )
    user = _pg_user()
    base = Path(tempfile.mkdtemp(prefix="forecourt-pg-"))
    data = base / "data"
    if user is not None:
        pw = pwd.getpwnam(user)
        os.chown(base, pw.pw_uid, pw.pw_gid)
    os.chmod(base, 0o700)
    try:
        _run(
            [
                str(bindir / "initdb"),
                "-D",
                str(data),
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--no-sync",
                "--no-instructions",
            ],
            user,
        )
        port = None
        for _ in range(5):
            port = _free_port()
            opts = (
                f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off"
                " -c synchronous_commit=off -c full_page_writes=off -c max_connections=100"
            )
            try:
                _run(
                    [
                        str(bindir / "pg_ctl"),
                        "-D",
                        str(data),
                        "-o",
                        opts,
                        "-l",
                        str(base / "log"),
                        "-w",
                        "-t",
                        "60",
                        "start",
                    ],
                    user,
                )
                break
            except RuntimeError:
                port = None
        if port is None:
            pytest.fail(f"PostgreSQL did not start; see {base / 'log'}")
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        if (data / "postmaster.pid").exists():
            with contextlib.suppress(RuntimeError):
                _run(
                    [str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"], user
                )
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def postgres_db(postgres_dsn: str) -> Iterator[str]:
    import psycopg

    name = f"t_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield postgres_dsn.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
