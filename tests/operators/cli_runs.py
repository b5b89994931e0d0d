"""Running `forecourt` as an operator does: a real subprocess, its exit and its lines."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def forecourt(
    *args: str | Path, cwd: Path | None = None, timeout: float = 120.0
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FORECOURT_")}
    return subprocess.run(
        [sys.executable, "-m", "forecourt.switch.cli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
    )


def operator_lines(stderr: str) -> list[str]:
    """What the command said to the operator: its lines that are not structured log records."""
    return [line for line in stderr.splitlines() if line.strip() and not line.startswith("{")]


def one_line_failure(result: subprocess.CompletedProcess[str]) -> str:
    """The failure is exactly one line, last, with a non-zero exit and no traceback."""
    assert result.returncode != 0, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    lines = operator_lines(result.stderr)
    assert len(lines) == 1, result.stderr
    assert result.stderr.rstrip().endswith(lines[0])
    return lines[0]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def shipped_config(tmp: Path, **replace: str) -> Path:
    """conf/forecourt.toml with its data_dir in `tmp`, free ports, and given lines replaced
    (`key=value` lines, matched by key at the start of a line, the first one only)."""
    text = (REPO / "conf" / "forecourt.toml").read_text(encoding="utf-8")
    text = re.sub(r"^data_dir = .*$", f'data_dir = "{tmp / "data"}"', text, count=1, flags=re.M)
    for old in ("9000", "9002", "9108", "9101"):
        text = re.sub(rf"^port = {old}\b", f"port = {free_port()}", text, flags=re.M)
    for key, line in replace.items():
        text = re.sub(rf"^#? ?{key} = .*$", line, text, count=1, flags=re.M)
    path = tmp / "forecourt.toml"
    path.write_text(text, encoding="utf-8")
    return path
