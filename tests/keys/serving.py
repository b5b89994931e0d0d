"""`forecourt keys init` and `forecourt serve` as real processes, for the LMK and file tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

FORECOURT = [sys.executable, "-m", "forecourt.switch.cli"]


def config(tmp_path: Path, keys_table: str) -> Path:
    """A small switch configuration in tmp_path (data_dir = tmp_path/data), `[keys]` as given."""
    path = tmp_path / "forecourt.toml"
    path.write_text(
        f"""
node = "lmk-test"
data_dir = "data"
default_route = "bank"
[logging]
level = "info"
format = "json"
[[listeners]]
name = "pos"
host = "127.0.0.1"
port = 0
dialect = "ifsf"
terminal_group = "site"
[[terminal_groups]]
name = "site"
terminals = ["T0000001"]
mac_required = false
[[acquirers]]
name = "bank"
host = "127.0.0.1"
port = 9
echo_interval_s = 0.0
reconnect_initial_s = 5.0
mac = false
[keys]
{keys_table}
"""
    )
    return path


def init(tmp_path: Path, *extra: str) -> None:
    """`forecourt keys init --data-dir tmp_path/data EXTRA...` (umask 022)."""
    subprocess.run(
        [*FORECOURT, "keys", "init", "--data-dir", str(tmp_path / "data"), *extra],
        check=True,
        capture_output=True,
        preexec_fn=lambda: os.umask(0o022),
    )


def serve(
    config: Path, on_started: Callable[[], None] = lambda: None, timeout: float = 60.0
) -> subprocess.CompletedProcess[str]:
    """`forecourt serve` (umask 022) until it logs switch_started; then `on_started()`
    runs and SIGTERM drains it. Returns at once if it exits before starting."""
    proc = subprocess.Popen(
        [*FORECOURT, "serve", "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        preexec_fn=lambda: os.umask(0o022),
    )
    assert proc.stdout is not None
    out: list[str] = []
    try:
        for line in proc.stdout:
            out.append(line)
            if "switch_started" in line:
                try:
                    on_started()
                finally:
                    proc.send_signal(signal.SIGTERM)
                break
        rest, err = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return subprocess.CompletedProcess(proc.args, proc.returncode, "".join(out) + rest, err)
