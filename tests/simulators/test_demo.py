"""The README's first command, end to end: `forecourt demo` passes and says so."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_demo_runs_the_certification_suite_and_exits_zero(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "forecourt.switch.cli",
            "demo",
            "--data-dir",
            str(tmp_path / "d"),
            "--load-seconds",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    assert "certification:" in out
    passed, total = out.split("certification: ", 1)[1].split(" cases passed", 1)[0].split("/")
    assert passed == total and int(total) >= 30
    assert "answered in" in out  # the load run happened
    assert "4761739001010010" not in out + result.stderr  # never a full PAN


def test_demo_fails_when_a_case_fails(tmp_path: Path) -> None:
    cert = tmp_path / "cert"
    cert.mkdir()
    (cert / "wrong.toml").write_text(
        """
name = "wrong on purpose"
[terminal]
terminal_id = "T0000001"
dialect = "ifsf"
kek = "0123456789ABCDEFFEDCBA9876543210"
pan = "4761739001010010"
[[cases]]
name = "expects a decline that the host will not give"
[[cases.steps]]
send = "sign_on"
expect = { action_code = "network_accepted" }
[[cases.steps]]
send = "purchase"
fields = { "4" = "000000001000" }
expect = { action_code = "declined" }
"""
    )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "forecourt.switch.cli",
            "demo",
            "--data-dir",
            str(tmp_path / "d"),
            "--load-seconds",
            "0",
            "--cert",
            str(cert),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1, result.stdout[-2000:] + result.stderr[-2000:]
    assert "0/1 cases passed" in result.stdout
