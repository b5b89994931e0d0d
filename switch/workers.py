"""`forecourt serve --workers N`: N switch processes on one machine, one port.

Each worker is a full switch process (`forecourt serve --worker-index i`) with its
own acquirer connections, journal writer and node name (`<node>-w<i>`, so crash
recovery never touches a sibling's rows). They share the listening port through
SO_REUSEPORT (the kernel spreads new connections over the workers), the journal
and the key store. Metrics: worker i serves on `metrics.port + i - 1` (when a
port is set), so each can be scraped and health-checked.

The parent only supervises: it forwards SIGTERM/SIGINT (every worker drains) and
starts a worker again if it dies, so that its own recovery runs at once.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import structlog
import trio

log = structlog.get_logger("forecourt.workers")


async def reuseport_listener(host: str, port: int) -> trio.SocketListener:
    """A listening socket with SO_REUSEPORT (trio.open_tcp_listeners does not set it)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = trio.socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        await sock.bind((host, port))
        sock.listen(socket.SOMAXCONN)
    except BaseException:
        sock.close()
        raise
    return trio.SocketListener(sock)


def worker_node(node: str, index: int) -> str:
    return f"{node}-w{index}"


def worker_metrics_port(port: int, index: int) -> int:
    return port + index - 1 if port else 0


def supervise(
    config_path: Path,
    workers: int,
    restart_delay_s: float = 1.0,
    instance_lock_fd: int | None = None,
) -> int:
    """Run `workers` worker processes until SIGTERM/SIGINT; restart any that dies.

    `instance_lock_fd` (SQLite): the data directory's lock file, held here and handed
    to every worker, so the lock stays held while any of them lives.
    """
    argv = [sys.executable, "-m", "forecourt.switch.cli", "serve", "--config", str(config_path)]
    passed: tuple[int, ...] = ()
    if instance_lock_fd is not None:
        argv += ["--instance-lock-fd", str(instance_lock_fd)]
        passed = (instance_lock_fd,)
    procs: dict[int, subprocess.Popen[bytes]] = {}
    stopping = False

    def start(index: int) -> None:
        procs[index] = subprocess.Popen(
            [*argv, "--worker-index", str(index), "--workers", str(workers)], pass_fds=passed
        )
        log.info("worker_started", worker=index, pid=procs[index].pid)

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal stopping
        if stopping:  # a second signal: stop now
            for p in procs.values():
                if p.poll() is None:
                    p.kill()
            os._exit(130)
        stopping = True
        for p in procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    for i in range(1, workers + 1):
        start(i)
    worst = 0
    while procs:
        time.sleep(0.2)
        for index, p in list(procs.items()):
            code = p.poll()
            if code is None:
                continue
            if stopping:
                del procs[index]
                worst = max(worst, abs(code))
                continue
            log.error("worker_died_restarting", worker=index, exit_code=code)
            time.sleep(restart_delay_s)
            start(index)
    return 0 if worst == 0 else 1
