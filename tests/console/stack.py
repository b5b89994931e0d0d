"""A real switch, acquirer simulator and console, each its own process, for the
browser test (Playwright's sync API runs its own loop, so no trio here).

Keys: T0000001 holds the certification test KEK (as `forecourt demo` registers it);
the acquirer link does not MAC (no ZAK to hand the simulator). The LMK sits outside
the data directory, as in production.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

import attrs
import httpx
import trio
from forecourt.keys.store import KeyStore
from forecourt.switch.demo import TEST_COMPONENT_1, TEST_KEK
from forecourt.switch.journal import open_journal
from forecourt.switch.journal.writes import AddOperator

from tests.console.rig import PASSWORD, password_hash

__all__ = ["PASSWORD", "TERMINAL", "Stack", "running_stack"]

FORECOURT = [sys.executable, "-m", "forecourt.switch.cli"]
REPO = Path(__file__).resolve().parents[2]
TERMINAL = "T0000001"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def switch_config(data_dir: Path, lmk: Path, pos: int, host: int, metrics: int) -> str:
    return f"""
node = "console-test"
data_dir = "{data_dir}"
default_route = "bank"
[keys]
lmk_file = "{lmk}"
[metrics]
port = {metrics}
[logging]
level = "warning"
format = "json"
[[listeners]]
name = "pos"
host = "127.0.0.1"
port = {pos}
dialect = "ifsf"
terminal_group = "site"
[[terminal_groups]]
name = "site"
terminals = ["{TERMINAL}"]
[[acquirers]]
name = "bank"
host = "127.0.0.1"
port = {host}
dialect = "ifsf"
mac = false
sign_on = false
request_timeout_s = 5.0
echo_interval_s = 0.0
reconnect_initial_s = 0.1
acquirer_id = "12345678"
"""


def purchase_script(pos: int, amount: int) -> str:
    return f"""
name = "console-browser"
[terminal]
terminal_id = "{TERMINAL}"
merchant_id = "FORECOURT000001"
dialect = "ifsf"
framing = "2b"
profile = "indoor"
kek = "{TEST_KEK.hex().upper()}"   # test only
pan = "4761739001010010"
acquirer_id = "12345678"
switch = "127.0.0.1:{pos}"
timeout_s = 10.0

[[cases]]
name = "sign-on"
[[cases.steps]]
send = "sign_on"
expect = {{ action_code = "network_accepted" }}

[[cases]]
name = "purchase approved"
[[cases.steps]]
send = "purchase"
fields = {{ "4" = "{amount:012d}" }}
expect = {{ action_code = "approved" }}
"""


@attrs.define
class Stack:
    root: Path
    config: Path
    data_dir: Path
    console_url: str
    pos_port: int
    processes: list[subprocess.Popen[bytes]] = attrs.field(factory=list)
    logs: list[BinaryIO] = attrs.field(factory=list)

    def forecourt(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*FORECOURT, *args], input=stdin, capture_output=True, text=True, timeout=120
        )

    def add_operator(self, name: str, role: str) -> None:
        """As `forecourt console add-operator` writes it (tests/console/test_cli.py runs
        the command itself), without a process start per operator."""

        async def add() -> None:
            async with open_journal(self.data_dir / "journal.db") as journal:
                await journal.write(AddOperator(name, role, password_hash(), time.time()))

        trio.run(add)

    def purchase(self, amount: int) -> None:
        script = self.root / "purchase.toml"
        script.write_text(purchase_script(self.pos_port, amount))
        done = self.forecourt("sim", "terminal", "--script", str(script))
        assert done.returncode == 0, done.stdout + done.stderr


def _start(stack: Stack, name: str, *args: str) -> None:
    log = (stack.root / f"{name}.log").open("wb")
    stack.logs.append(log)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    stack.processes.append(
        subprocess.Popen([*FORECOURT, *args], stdout=log, stderr=subprocess.STDOUT, env=env)
    )


def _wait_for(url: str, status: int = 200, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    last: object = None
    while time.monotonic() < deadline:
        try:
            last = httpx.get(url, timeout=2.0).status_code
            if last == status:
                return
        except httpx.HTTPError as exc:
            last = exc
        time.sleep(0.2)
    raise AssertionError(f"{url} did not answer {status} within {seconds} s (last: {last})")


@contextmanager
def running_stack(root: Path) -> Iterator[Stack]:
    data_dir, lmk = root / "data", root / "lmk.key"
    component_2 = bytes(a ^ b for a, b in zip(TEST_KEK, TEST_COMPONENT_1, strict=True))
    with KeyStore.init(data_dir, lmk_file=lmk) as store:
        store.add_terminal(TERMINAL, actor="test", components=(TEST_COMPONENT_1, component_2))
    pos, host, metrics, console = free_port(), free_port(), free_port(), free_port()
    config = root / "forecourt.toml"
    config.write_text(switch_config(data_dir, lmk, pos, host, metrics))
    stack = Stack(root, config, data_dir, f"http://127.0.0.1:{console}", pos)
    try:
        acquirer = REPO / "conf" / "sim" / "acquirer.toml"
        _start(stack, "acquirer", "sim", "acquirer", "--config", str(acquirer), "--port", str(host))
        _start(stack, "switch", "serve", "--config", str(config))
        _wait_for(f"http://127.0.0.1:{metrics}/healthz")  # the link to the simulator is up
        _start(
            stack, "console", "console", "--config", str(config), "--listen", f"127.0.0.1:{console}"
        )
        _wait_for(f"{stack.console_url}/login")
        yield stack
    finally:
        for p in reversed(stack.processes):
            p.send_signal(signal.SIGTERM)
        for p in reversed(stack.processes):
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        for log in stack.logs:
            log.close()
