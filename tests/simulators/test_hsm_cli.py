"""`forecourt sim hsm` from the command line: an operator's mistake is one line and
a non-zero exit; the LMK is generated once into the data directory, mode 0600,
and used again on the next start; SIGTERM stops it with its counts."""

from __future__ import annotations

import os
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from forecourt.switch.cli import main


def test_unknown_command_to_disable_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["sim", "hsm", "--data-dir", str(tmp_path), "--disable", "ZZ"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--disable ZZ" in err and "Traceback" not in err


def test_an_lmk_file_that_is_not_one_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "lmk.key"
    bad.write_text("not hex\n")
    bad.chmod(0o600)
    assert main(["sim", "hsm", "--data-dir", str(tmp_path), "--lmk-file", str(bad)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "LMK" in err and "--lmk-file" in err


@pytest.mark.slow
def test_serves_keeps_its_lmk_and_stops_on_sigterm(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    argv = [sys.executable, "-m", "forecourt.switch.cli", "sim", "hsm"]
    argv += ["--data-dir", str(tmp_path / "hsm"), "--port", str(port)]
    kcvs = []
    for _ in range(2):
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as c:
                    c.sendall(b"\x00\x060000NC")
                    reply = c.recv(100)
                break
            except OSError:
                assert time.monotonic() < deadline and proc.poll() is None
                time.sleep(0.1)
        assert reply[2:10] == b"0000ND00"
        kcvs.append(reply[10:26])
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0
        assert "HSM simulator stopped: 1 commands (NC: 1)" in err
        logged = out + err  # one line per command: its name and error code
        assert "hsm_command" in logged and "command=NC" in logged and "error=00" in logged
    lmk_file = tmp_path / "hsm" / "hsm-lmk.key"
    assert stat.S_IMODE(os.stat(lmk_file).st_mode) == 0o600
    assert kcvs[0] == kcvs[1]  # the second start used the LMK the first generated
