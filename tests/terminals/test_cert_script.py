"""conf/cert/11-operators.toml in `forecourt demo`: the demo makes its terminal pending
with the script's code (switch/demo_terminals.py) and every case passes."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_the_operators_script_passes_in_the_demo(tmp_path: Path) -> None:
    cert = tmp_path / "cert"
    cert.mkdir()
    shutil.copy(REPO / "conf" / "cert" / "11-operators.toml", cert)
    demo = ("demo", "--load-seconds", "0", "--data-dir", str(tmp_path / "d"), "--cert", str(cert))
    result = subprocess.run(
        [sys.executable, "-m", "forecourt.switch.cli", *demo],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "certification: 4/4 cases passed" in result.stdout
    for case in ("registration: an activation code", "cashier sign-on, a", "device status"):
        assert case in result.stdout
    assert "CERT11ACT1VATE00" not in result.stdout + result.stderr  # the code is in no log
