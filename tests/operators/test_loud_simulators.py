"""The simulators fail loudly: connection failures shown, a non-zero exit when nothing
was approved, a real reason and per-case progress in `sim terminal`, and Ctrl-C
(SIGINT to a real subprocess) gives the partial report without a traceback.

The load runs against the acquirer simulator itself (a host it can drive), which
approves the default PAN and declines 4000000000000119 (conf/sim/acquirer.toml).
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.operators.cli_runs import REPO, forecourt, free_port, operator_lines

SIM_RULES = REPO / "conf" / "sim" / "acquirer.toml"


def _started(args: list[str], ready: str, log: Path) -> subprocess.Popen[bytes]:
    """A `forecourt` subprocess whose output goes to `log`, once `ready` appears in it."""
    with log.open("wb") as out:  # the child has its own copy of the descriptor
        process = subprocess.Popen(
            [sys.executable, "-m", "forecourt.switch.cli", *args], stdout=out, stderr=out
        )
    deadline = time.monotonic() + 60
    while ready not in log.read_text(errors="replace"):
        assert process.poll() is None, log.read_text(errors="replace")
        assert time.monotonic() < deadline, log.read_text(errors="replace")
        time.sleep(0.1)
    return process


def _interrupted(process: subprocess.Popen[bytes], log: Path) -> tuple[int, str]:
    process.send_signal(signal.SIGINT)
    code = process.wait(timeout=60)
    return code, log.read_text(errors="replace")


def test_load_against_nothing_shows_the_failed_connections(tmp_path: Path) -> None:
    port = free_port()
    result = forecourt("sim", "load", "--switch", f"127.0.0.1:{port}", "--duration", "1")
    assert result.returncode == 1
    assert "connections failed" in result.stdout and "│ 10 " in result.stdout
    line = operator_lines(result.stderr)[-1]
    assert f"10 connections to 127.0.0.1:{port} failed" in line


def test_terminal_that_cannot_connect_says_why_and_shows_each_case(tmp_path: Path) -> None:
    port = free_port()
    script = REPO / "conf" / "cert" / "04-iso87.toml"
    result = forecourt("sim", "terminal", "--script", script, "--switch", f"127.0.0.1:{port}")
    assert result.returncode == 1
    assert "None" not in result.stdout and "Connection refused" in result.stdout
    progress = [line for line in result.stderr.splitlines() if line.startswith("  [")]
    assert progress[0].startswith("  [1/8] 0800 sign-on delivers keys in field 48: FAIL")
    assert progress[-1].startswith("  [8/8] ")


@pytest.mark.slow
def test_ctrl_c_gives_partial_reports_and_no_approval_exits_1(tmp_path: Path) -> None:
    port = free_port()
    acquirer = _started(
        ["sim", "acquirer", "--config", str(SIM_RULES), "--port", str(port)],
        "acquirer simulator on",
        tmp_path / "acquirer.log",
    )
    try:
        declines = tmp_path / "declines.toml"
        declines.write_text('[[mix]]\npan = ["4000000000000119"]\n', encoding="utf-8")
        address = f"127.0.0.1:{port}"
        common = ["sim", "load", "--switch", address, "--terminals", "2", "--duration", "1"]
        result = forecourt(*common, "--mix", declines)
        assert result.returncode == 1, result.stderr
        line = operator_lines(result.stderr)[-1]
        assert "no request was approved" in line and "action codes 100:" in line
        assert forecourt(*common, "--mix", declines, "--allow-no-approvals").returncode == 0

        load = _started([*common[:-1], "60", "--quiet"], "load: 2 terminals", tmp_path / "load.log")
        time.sleep(2)
        code, output = _interrupted(load, tmp_path / "load.log")
        assert code == 130 and "Traceback" not in output, output
        assert "interrupted: the report covers the run so far" in output
        assert "sent / answered" in output and "approved" in output
    finally:
        code, output = _interrupted(acquirer, tmp_path / "acquirer.log")
    assert code == 0 and "Traceback" not in output, output
    assert "acquirer simulator stopped:" in output and "1200:" in output


def test_ctrl_c_in_sim_terminal_gives_the_partial_report(tmp_path: Path) -> None:
    with socket.socket() as silent:  # connects (the backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        port = silent.getsockname()[1]
        script = REPO / "conf" / "cert" / "03-negative.toml"
        log = tmp_path / "terminal.log"
        terminal = _started(
            ["sim", "terminal", "--script", str(script), "--switch", f"127.0.0.1:{port}"],
            "negative: ",
            log,
        )
        time.sleep(1.0)
        code, output = _interrupted(terminal, log)
    assert code == 130 and "Traceback" not in output, output
    assert "interrupted after 0 of" in output and "cases passed" in output
