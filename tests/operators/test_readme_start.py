"""The README's production start, run literally: the commands are read out of
README.md (its "A first production start" sh block), not copied here.

Only the two system folders move into a temporary one (`/etc/forecourt`,
`/var/lib/forecourt`); the repository's `conf/` is copied beside them and is the
working folder. A line ending in `&` is started and left running (the acquirer
simulator, the switch) and stopped with SIGTERM at the end; every other line must
exit 0. The last line runs the certification scripts the README names: all their
cases must pass.

The README's ports are fixed (9000, 9002, 9101, 9108: some in its own text, such as
the health check's), so two checkouts running this at once would collide. Every line
therefore runs in a network namespace of this test's own (`unshare --net`, loopback
up, entered with `nsenter`), where nothing else listens: the README's text and
configuration stay as they are. Where namespaces cannot be made (not root), the test
takes a lock file instead, so that two runs on one machine take turns.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SECTION = "## A first production start"
SYSTEM_FOLDERS = ("/etc/forecourt", "/var/lib/forecourt")
README_PORTS = (9000, 9002, 9101, 9108)  # conf/forecourt.toml, conf/sim/acquirer.toml
LOCK_FILE = Path("/tmp/forecourt-readme-start.lock")  # only without a namespace


@contextmanager
def own_network() -> Iterator[list[str]]:
    """The prefix that runs a command in a network namespace of this test's own, held
    open by one process for the test's length; [] under a lock file where none can be
    made."""
    try:
        holder = subprocess.Popen(
            ["unshare", "--net", "--", "sh", "-c", "ip link set lo up && echo up && exec cat"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
    except FileNotFoundError:  # no util-linux
        holder = None
    if holder is not None:
        with holder:  # at the end its pipes closed: cat ends, and the namespace with it
            assert holder.stdout is not None
            if holder.stdout.readline() == b"up\n":
                yield ["nsenter", f"--net=/proc/{holder.pid}/ns/net", "--"]
                return
    with LOCK_FILE.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another checkout's run goes first
        yield []


def readme_commands() -> list[str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text[text.index(SECTION) :]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block is not None, "the production start has no sh block"
    return [line for line in block.group(1).splitlines() if line.strip()]


def test_the_readme_block_is_found_and_runs_the_certification_scripts() -> None:
    lines = readme_commands()
    assert any(line.startswith("forecourt serve ") and line.endswith("&") for line in lines)
    assert lines[-1].startswith("forecourt sim terminal ")
    for script in re.findall(r"--script (\S+)", lines[-1]):
        assert (REPO / script).is_file(), script


@pytest.mark.slow
def test_readme_production_start_literally(tmp_path: Path) -> None:
    work = tmp_path / "checkout"
    work.mkdir()
    shutil.copytree(REPO / "conf", work / "conf")
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    for name in ("FORECOURT_LMK", "FORECOURT_DATA_DIR"):
        env.pop(name, None)
    with own_network() as network, contextlib.ExitStack() as taken:
        if network:  # the README's ports taken out here, as another run would take them
            for port in README_PORTS:
                with contextlib.suppress(OSError):  # already taken: all the better
                    holder = taken.enter_context(socket.socket())
                    holder.bind(("127.0.0.1", port))
                    holder.listen()
        _run_readme(tmp_path, work, env, network)


def _run_readme(tmp_path: Path, work: Path, env: dict[str, str], network: list[str]) -> None:
    background: list[tuple[str, subprocess.Popen[bytes], Path]] = []
    last: subprocess.CompletedProcess[str] | None = None
    try:
        for number, line in enumerate(readme_commands(), 1):
            for folder in SYSTEM_FOLDERS:
                line = line.replace(folder, f"{tmp_path}{folder}")
            if line.endswith("&"):
                log = tmp_path / f"background-{number}.log"
                with log.open("wb") as out:
                    process = subprocess.Popen(
                        [*network, "bash", "-c", f"exec {line[:-1].strip()}"],
                        cwd=work,
                        env=env,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                background.append((line, process, log))
                continue
            last = subprocess.run(
                [*network, "bash", "-e", "-c", line],
                cwd=work,
                env=env,
                capture_output=True,
                text=True,
                timeout=400,
                stdin=subprocess.DEVNULL,
            )
            assert last.returncode == 0, (
                f"README line {number} failed ({last.returncode}): {line}\n"
                f"{last.stdout[-3000:]}\n{last.stderr[-3000:]}"
            )
        assert last is not None
        passed = re.search(r"(\d+)/(\d+) cases passed", last.stdout)
        assert passed is not None and passed.group(1) == passed.group(2), last.stdout[-3000:]
        assert int(passed.group(2)) >= 41
    finally:
        for _, process, _ in background:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        outputs = []
        for line, process, log in background:
            try:
                code = process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                code = process.wait()
            outputs.append((line, code, log.read_text(encoding="utf-8", errors="replace")))
    for line, code, output in outputs:
        assert code == 0, f"{line} exited {code}:\n{output[-3000:]}"
        assert "Traceback" not in output, output[-3000:]
    assert any("acquirer simulator stopped:" in output for _, _, output in outputs)
