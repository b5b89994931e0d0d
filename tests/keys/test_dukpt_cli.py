"""`forecourt keys add-bdk` / `add-dukpt-terminal` as an operator runs them (subprocesses).

The BDK is the X9.24-3-2017 supplement's AES-128 test BDK, brought as two
component files, so the initial key the command splits into components is the
supplement's known answer (1273671EA26AC29AFA4D1084127652A1 for initial key ID
1234567890123456); the output never shows the BDK or its components.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import forecourt.switch.cli as switch_cli
import pytest
from forecourt.keys.crypto import Algorithm, kcv

FORECOURT = [sys.executable, "-m", "forecourt.switch.cli", "keys"]
BDK = bytes.fromhex("FEDCBA9876543210F1F1F1F1F1F1F1F1")
C1 = bytes.fromhex("00112233445566778899AABBCCDDEEFF")
C2 = bytes(a ^ b for a, b in zip(BDK, C1, strict=True))
INITIAL_KEY = bytes.fromhex("1273671EA26AC29AFA4D1084127652A1")


def keys(tmp: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "FORECOURT_LMK"}
    env["FORECOURT_DATA_DIR"] = str(tmp / "data")
    return subprocess.run(
        [*FORECOURT, *argv], cwd=tmp, env=env, capture_output=True, text=True, timeout=60
    )


def component(path: Path) -> bytes:
    return bytes.fromhex(
        "".join(s for s in path.read_text().splitlines() if not s.startswith("#")).replace(" ", "")
    )


def test_initial_key_ceremony_end_to_end(tmp_path: Path) -> None:
    assert keys(tmp_path, "init", "--lmk-file", "etc/lmk.key").returncode == 0
    for i, c in enumerate((C1, C2), 1):
        (tmp_path / f"c{i}.txt").write_text(c.hex() + "\n")
    r = keys(
        tmp_path,
        "add-bdk",
        "bdk1",
        "--algorithm",
        "aes128",
        "--import",
        "--component-file",
        "c1.txt",
        "--component-file",
        "c2.txt",
        "--component-kcv",
        kcv(C1, Algorithm.AES128),
        "--component-kcv",
        kcv(C2, Algorithm.AES128),
        "--kcv",
        kcv(BDK, Algorithm.AES128),
    )
    assert r.returncode == 0, r.stderr
    assert f"KCV {kcv(BDK, Algorithm.AES128)}" in r.stdout

    out_dir = tmp_path / "injection"
    out_dir.mkdir()
    r = keys(
        tmp_path,
        "add-dukpt-terminal",
        "P0000001",
        "--bdk",
        "bdk1",
        "--initial-key-id",
        "1234567890123456",
        "--component-files",
        str(out_dir),
    )
    assert r.returncode == 0, r.stderr
    files = sorted(out_dir.glob("P0000001-component-*.txt"))
    assert len(files) == 2
    assert all(f.stat().st_mode & 0o777 == 0o600 for f in files)
    parts = [component(f) for f in files]
    assert bytes(a ^ b for a, b in zip(*parts, strict=True)) == INITIAL_KEY
    for i, part in enumerate(parts, 1):
        assert f"component {i} KCV {kcv(part, Algorithm.AES128)}" in r.stdout
    assert f"initial key KCV {kcv(INITIAL_KEY, Algorithm.AES128)}" in r.stdout
    shown = (r.stdout + r.stderr).upper().replace(" ", "")
    for secret in (BDK, C1, C2, INITIAL_KEY, *parts):
        assert secret.hex().upper() not in shown


def test_listing_and_operator_mistakes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """In process (the subprocess path is proven above): one line, exit 2, no traceback."""
    monkeypatch.setattr(switch_cli, "COMMAND_MODULES", ("forecourt.keys.cli",))
    monkeypatch.delenv("FORECOURT_LMK", raising=False)
    monkeypatch.setenv("FORECOURT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)

    def run(*argv: str) -> tuple[int, str, str]:
        try:
            rc = switch_cli.main(["keys", *argv])
        except SystemExit as e:
            rc = int(e.code or 0)
        out, err = capsys.readouterr()
        return rc, out, err

    assert run("init", "--lmk-file", "etc/lmk.key")[0] == 0
    out_dir = tmp_path / "injection"
    out_dir.mkdir()
    assert run("add-bdk", "bdk1", "--algorithm", "tdes2", "--component-files", str(out_dir))[0] == 0
    rc, out, _ = run(
        "add-dukpt-terminal",
        "P0000001",
        "--bdk",
        "bdk1",
        "--initial-key-id",
        "FFFF9876543210E00000",
        "--component-files",
        str(out_dir),
    )
    assert rc == 0 and "tdes DUKPT" in out
    rc, out, _ = run("dukpt-terminals")
    assert "P0000001: tdes DUKPT, BDK bdk1, initial key ID FFFF9876543210E00000" in out
    before = len(list(out_dir.iterdir()))
    for argv in (
        ("add-dukpt-terminal", "P2", "--bdk", "nosuch", "--initial-key-id", "1234567890123456"),
        ("add-dukpt-terminal", "P3", "--bdk", "bdk1", "--initial-key-id", "12345678"),
        ("add-dukpt-terminal", "P0000001", "--bdk", "bdk1", "--initial-key-id", "00" * 10),
        ("add-bdk", "bdk1", "--algorithm", "aes128"),
    ):
        rc, out, err = run(*argv, "--component-files", str(out_dir))
        assert rc == 2, out
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert len(list(out_dir.iterdir())) == before  # nothing half-written
