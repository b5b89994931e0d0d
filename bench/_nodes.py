"""Shared pieces of the multi-node benches: a throwaway PostgreSQL, keys, configs, processes.

Loopback only. Everything lives in one temporary directory that is removed at the end.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
FORECOURT = [sys.executable, "-m", "forecourt.switch.cli"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def postgres() -> Iterator[str]:
    """A throwaway PostgreSQL cluster (the machine's binaries, as tests/conftest.py)."""
    from tests.conftest import _pg_bindir, _pg_user, _run

    base = Path(tempfile.mkdtemp(prefix="forecourt-pg-"))
    bindir = _pg_bindir()
    if bindir is None:
        raise SystemExit("PostgreSQL binaries (initdb, pg_ctl) not found")
    user = _pg_user()
    if user is not None:
        pw = pwd.getpwnam(user)
        os.chown(base, pw.pw_uid, pw.pw_gid)
    os.chmod(base, 0o700)
    data = base / "data"
    _run([str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres",
          "-E", "UTF8", "--no-sync", "--no-instructions"], user)  # fmt: skip
    port = free_port()
    # durable settings (fsync on): the figures are a switch's, not a test's
    opts = f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c max_connections=200"
    _run([str(bindir / "pg_ctl"), "-D", str(data), "-o", opts, "-l", str(base / "log"),
          "-w", "-t", "60", "start"], user)  # fmt: skip
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        with contextlib.suppress(RuntimeError):
            _run([str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"], user)
        shutil.rmtree(base, ignore_errors=True)


def provision(data_dir: Path, dsn: str | None, terminals: int, prefix: str = "L") -> None:
    """An LMK beside data_dir, a key store (SQLite in data_dir, or PostgreSQL), load terminals."""
    from forecourt.keys.store import KeyStore

    store = KeyStore.init(data_dir, dsn=dsn, lmk_file=data_dir.parent / f"{data_dir.name}-lmk.key")
    try:
        width = 8 - len(prefix)
        for n in range(1, terminals + 1):
            store.add_terminal(f"{prefix}{n:0{width}d}", actor="bench")
    finally:
        store.close()


def acquirer_config(path: Path, port: int, record: Path | None) -> Path:
    rec = f'file = "{record}"\n' if record else ""
    path.write_text(
        f"""seed = 1
[listen]
host = "127.0.0.1"
port = {port}
dialect = "ifsf"
[record]
{rec}keep = 1000000
[[rules]]
name = "approve everything"
action = "approve"
"""
    )
    return path


def node_config(
    path: Path,
    *,
    node: str,
    data_dir: Path,
    port: int,
    metrics_port: int,
    acquirer_port: int,
    database: str | None,
    request_timeout_s: float = 5.0,
    lease_s: float = 60.0,
    max_in_flight: int = 8,
    synchronous: str = "full",
) -> Path:
    db = f'database = "{database}"\n' if database else ""
    path.write_text(
        f"""node = "{node}"
data_dir = "{data_dir}"
{db}default_route = "bank"
[metrics]
host = "127.0.0.1"
port = {metrics_port}
[logging]
level = "warning"
format = "json"
[journal]
synchronous = "{synchronous}"
[saf]
lease_s = {lease_s}
backoff_initial_s = 0.5
backoff_max_s = 2.0
[[listeners]]
name = "pos"
host = "127.0.0.1"
port = {port}
dialect = "ifsf"
terminal_group = "site"
max_connections = 5000
[[terminal_groups]]
name = "site"
terminals = "registry"
mac_required = true
max_in_flight = {max_in_flight}
[[acquirers]]
name = "bank"
host = "127.0.0.1"
port = {acquirer_port}
dialect = "ifsf"
mac = false                     # the bench's host has no ZAK (MAC is on by default)
connections = 4
max_in_flight = 2000
request_timeout_s = {request_timeout_s}
echo_interval_s = 0.0
reconnect_initial_s = 0.1
reconnect_max_s = 1.0
"""
    )
    return path


def wait_port(port: int, timeout: float = 30.0) -> None:
    """As the other benchmarks wait for a port (bench/_harness.py)."""
    import _harness

    _harness.wait_port(port, timeout)


def wait_healthy(port: int, timeout: float = 30.0) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        url = f"http://127.0.0.1:{port}/healthz"
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=1) as r:
            if r.status == 200:
                return
        time.sleep(0.1)
    raise SystemExit(f"/healthz on {port} not healthy after {timeout:g} s")


def start(argv: list[str], log: Path) -> subprocess.Popen[bytes]:
    out = open(log, "ab")  # noqa: SIM115 - the child owns it
    return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=REPO)


def stop(proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Processes to stop (in reverse order) however the block ends."""
    procs: list[subprocess.Popen[bytes]] = []
    try:
        yield procs
    finally:
        for p in reversed(procs):
            stop(p, 10.0)


@contextlib.contextmanager
def workdir(keep: bool = False) -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="forecourt-bench-"))
    try:
        yield d
    finally:
        if not keep:
            shutil.rmtree(d, ignore_errors=True)
