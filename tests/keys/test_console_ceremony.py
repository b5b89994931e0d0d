"""The ceremonies of a payshield store, as operators run them: `keys add-terminal`
prints the KEK's and the sign-on key's components, the custodians form both at
the HSM console (`forecourt sim hsm form-key`), and `keys add-terminal --kek-block
--sign-on-block` registers the terminal; the terminal, holding only the KEK
components, installs the first keys and derives the sign-on key the HSM holds."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from forecourt.keys.component_files import read_component_file
from forecourt.keys.crypto import Algorithm, kcv, xor
from forecourt.keys.lmk import Lmk
from forecourt.keys.sign_on import sign_on_key
from forecourt.simulators.hsm_keys import open_block
from forecourt.switch.cli import main

from tests.keys.hsm_thread import hsm_in_thread

Run = tuple[int, str, str]


@pytest.fixture
def forecourt(capsys: pytest.CaptureFixture[str]) -> Callable[..., Run]:
    """`forecourt ARGS` in this process (the same parser and handlers as the command,
    without a Python start per call): (exit code, stdout, stderr)."""

    def run(*args: str | Path) -> Run:
        capsys.readouterr()
        code = main([str(a) for a in args])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def one_line_failure(done: Run) -> str:
    code, _, err = done
    assert code != 0 and "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    return lines[0]


TERMINAL = "T0000009"


def _kcv_line(path: Path, what: str) -> str:
    found = re.search(rf"^# {what} KCV: ([0-9A-F]{{6}})$", path.read_text(), re.M)
    assert found, path.read_text()
    return found.group(1)


def form(
    forecourt: Callable[..., Run],
    hsm_dir: Path,
    usage: str,
    algorithm: str,
    files: list[Path],
    key_kcv: str,
) -> tuple[str, str]:
    """`forecourt sim hsm form-key` with the custodians' files: (block, KCV) it printed."""
    kcvs = [a for f in files for a in ("--component-kcv", _kcv_line(f, r"component \d"))]
    done = forecourt(
        "sim", "hsm", "form-key", "--data-dir", hsm_dir, "--usage", usage,
        "--algorithm", algorithm, *[a for f in files for a in ("--component-file", f)],
        *kcvs, "--kcv", key_kcv,
    )  # fmt: skip
    code, out, err = done
    assert code == 0, err
    block = re.search(r"^key block: (S\S+)$", out, re.M)
    check = re.search(r"^KCV: ([0-9A-F]{6})$", out, re.M)
    assert block and check, out
    assert check.group(1) == key_kcv
    return block.group(1), check.group(1)


def test_form_key_then_add_terminal_and_add_acquirer(
    tmp_path: Path, forecourt: Callable[..., Run]
) -> None:
    hsm_dir, data, custody = tmp_path / "hsm", tmp_path / "data", tmp_path / "custody"
    custody.mkdir()
    lmk_file = tmp_path / "lmk.key"
    Lmk.generate().write(lmk_file)
    with hsm_in_thread(hsm_dir) as hsm:
        at = ("--data-dir", data, "--lmk-file", lmk_file, "--backend", "payshield")
        at = (*at, "--hsm", hsm.address)
        code, out, err = forecourt("keys", "init", *at)
        assert code == 0 and "payshield backend" in out, err

        # the KEK ceremony: components for the custodians, nothing stored yet
        code, out, err = forecourt(
            "keys", "add-terminal", TERMINAL, *at, "--component-files", custody
        )
        assert code == 0, err
        assert "nothing stored yet" in out and "form-key" in out
        kek_files = [custody / f"{TERMINAL}-component-{i}.txt" for i in (1, 2)]
        sign_on_files = [custody / f"{TERMINAL}-sign-on-component-{i}.txt" for i in (1, 2)]
        assert all(f.stat().st_mode & 0o777 == 0o600 for f in kek_files + sign_on_files)
        assert TERMINAL not in forecourt("keys", "list", *at)[1]

        # at the console
        kek_block, kek_kcv = form(
            forecourt, hsm_dir, "K0", "tdes2", kek_files, _kcv_line(kek_files[0], "KEK")
        )
        sign_on_kcv = _kcv_line(sign_on_files[0], "sign-on key")
        sign_on_block, _ = form(forecourt, hsm_dir, "M3", "tdes2", sign_on_files, sign_on_kcv)

        # a block with the wrong KCV: one line, nothing stored
        wrong = forecourt(
            "keys", "add-terminal", TERMINAL, *at, "--kek-block", kek_block, "--kcv", "000000",
            "--sign-on-block", sign_on_block, "--sign-on-kcv", sign_on_kcv,
        )  # fmt: skip
        assert "does not match KCV 000000" in one_line_failure(wrong)

        code, out, err = forecourt(
            "keys", "add-terminal", TERMINAL, *at, "--kek-block", kek_block, "--kcv", kek_kcv,
            "--sign-on-block", sign_on_block, "--sign-on-kcv", sign_on_kcv,
        )  # fmt: skip
        assert code == 0, err
        assert f"KEK KCV {kek_kcv}, sign-on key KCV {sign_on_kcv}" in out

        # the terminal holds the KEK components only: its KEK and derived sign-on key
        # are what the HSM holds
        kek = xor(*(read_component_file(f, i) for i, f in enumerate(kek_files, 1)))
        assert kcv(kek, Algorithm.TDES2) == kek_kcv
        derived = sign_on_key(kek, TERMINAL, Algorithm.TDES2)
        assert open_block(hsm.lmk.key, sign_on_block).key == derived

        # an acquirer link's ZMK formed at the console the same way
        zmk_files = []
        for i, part in enumerate(
            ("0123456789ABCDEFFEDCBA9876543210", "1F1F1F1F2E2E2E2E3D3D3D3D4C4C4C4C"), 1
        ):
            f = custody / f"zmk-{i}.txt"
            c = bytes.fromhex(part)
            f.write_text(f"# component {i} KCV: {kcv(c, Algorithm.TDES2)}\n{part}\n")
            zmk_files.append(f)
        zmk = xor(*(bytes.fromhex(f.read_text().split()[-1]) for f in zmk_files))
        zmk_block, zmk_kcv = form(
            forecourt, hsm_dir, "K0", "tdes2", zmk_files, kcv(zmk, Algorithm.TDES2)
        )
        refused = forecourt("keys", "add-acquirer", "bank", *at, "--component-file", zmk_files[0])
        assert "no clear ZMK components" in one_line_failure(refused)
        code, out, err = forecourt(
            "keys", "add-acquirer", "bank", *at, "--zmk-block", zmk_block, "--kcv", zmk_kcv
        )
        assert code == 0 and f"KCV {zmk_kcv}" in out, err

        # the working keys the HSM made install at the terminal under its KEK
        code, out, err = forecourt("keys", "rotate", TERMINAL, *at, "--activate")
        assert code == 0 and "TAK v2" in out, err
        listed = forecourt("keys", "list", *at, "--owner", TERMINAL)[1]
        for key_type in ("KEK", "SOK", "TAK", "TPK", "TDK"):
            assert key_type in listed

        # a clear export is refused on this store, in one line
        export = forecourt("keys", "export-test-keys", "bank", *at, "--to", tmp_path / "k.toml")
        assert "payment HSM" in one_line_failure(export)
        # and opening it as a software store names both backends and the fix
        wrong_backend = forecourt("keys", "list", "--data-dir", data, "--lmk-file", lmk_file)
        line = one_line_failure(wrong_backend)
        assert "payshield backend" in line and "software" in line and "[keys] backend" in line
