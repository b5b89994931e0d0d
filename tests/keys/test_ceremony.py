"""The key ceremony under split knowledge: each custodian sees only their component.

Interactive runs drive the real `forecourt` process on a pseudo-terminal; the
rest run the CLI in-process (stdin/stdout not a terminal) or call the ceremony
with given input streams.
"""

from __future__ import annotations

import argparse
import fcntl
import io
import os
import re
import select
import stat
import subprocess
import sys
import termios
import time
from collections.abc import Iterator
from pathlib import Path

import forecourt.switch.cli as switch_cli
import pytest
from forecourt.keys import Family, KcvMismatch, KeyStore, install_key_change, kcv
from forecourt.keys.ceremony import (
    CLEAR_SCREEN,
    Custodians,
    import_acquirer,
    import_terminal,
    new_terminal,
)
from forecourt.keys.ceremony_cli import add_acquirer_arguments, add_terminal_arguments
from forecourt.keys.crypto import Algorithm, adjust_parity

C1 = "0123456789ABCDEFFEDCBA9876543210"
C2 = "1111111111111111FFFFFFFFFFFFFFFF"
C1_KCV, C2_KCV = "08D7B4", "63F451"
ZMK_KCV = "77C58C"  # TDES-2 KCV of C1 XOR C2, odd parity set


@pytest.fixture(autouse=True)
def _only_keys(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(switch_cli, "COMMAND_MODULES", ("forecourt.keys.cli",))
    monkeypatch.delenv("FORECOURT_LMK", raising=False)
    monkeypatch.setenv("FORECOURT_DATA_DIR", str(tmp_path / "data"))


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        rc = switch_cli.main(["keys", *argv])
    except SystemExit as e:
        rc = int(e.code or 0)
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.fixture
def data(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> Path:
    assert run(capsys, "init", "--lmk-file", str(tmp_path / "lmk.key"))[0] == 0  # outside data
    return tmp_path / "data"


def owners(data: Path) -> list[str]:
    with KeyStore.open(data) as store:
        return [o.name for o in store.owners()]


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


class Console:
    """`forecourt keys ...` in a real process whose terminal is a pseudo-terminal."""

    def __init__(self, data: Path, *argv: str) -> None:
        master, slave = os.openpty()
        env = {k: v for k, v in os.environ.items() if k != "FORECOURT_LMK"}
        env["FORECOURT_DATA_DIR"] = str(data)

        def controlling_terminal() -> None:
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)

        self.proc = subprocess.Popen(
            [sys.executable, "-m", "forecourt.switch.cli", "keys", *argv],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=env,
            start_new_session=True,
            preexec_fn=controlling_terminal,
        )
        os.close(slave)
        self.fd = master
        self.seen = ""

    def expect(self, text: str, timeout: float = 20.0) -> str:
        """Read until `text` appears; returns everything read up to and including it."""
        end = time.monotonic() + timeout
        while text not in self.seen:
            left = end - time.monotonic()
            assert left > 0, f"no {text!r} in {self.seen!r}"
            ready, _, _ = select.select([self.fd], [], [], left)
            if ready:
                try:
                    chunk = os.read(self.fd, 4096)
                except OSError:  # EIO: the process closed the terminal
                    chunk = b""
                assert chunk, f"process ended without {text!r}: {self.seen!r}"
                self.seen += chunk.decode()
        return self.seen[: self.seen.index(text) + len(text)]

    def send(self, line: str) -> None:
        os.write(self.fd, line.encode() + b"\r")

    def argv(self) -> list[str]:
        """What `ps` shows of the process."""
        return Path(f"/proc/{self.proc.pid}/cmdline").read_text().split("\0")

    def close(self) -> int:
        rc = self.proc.wait(timeout=20)
        os.close(self.fd)
        return rc


@pytest.fixture
def consoles() -> Iterator[list[Console]]:
    made: list[Console] = []
    yield made
    for c in made:
        if c.proc.poll() is None:
            c.proc.kill()
            c.proc.wait()


_COMPONENT = re.compile(r"component (\d):\s+([0-9A-F ]+?)\r?\n\s+component \1 KCV: ([0-9A-F]{6})")


def test_generated_components_are_shown_one_custodian_at_a_time(
    data: Path, consoles: list[Console]
) -> None:
    con = Console(data, "add-terminal", "T0000001", "--data-dir", str(data))  # as README.md
    consoles.append(con)
    before = con.expect("press Enter to see component 1")
    assert "component 1:" not in before
    con.send("")
    shown_1 = con.expect("record component 1, then press Enter to clear")
    m1 = _COMPONENT.search(shown_1)
    assert m1 and m1.group(1) == "1"
    assert "component 2" not in shown_1  # the second is not shown before the confirmation
    con.send("")
    before_2 = con.expect("press Enter to see component 2")
    assert CLEAR_SCREEN in before_2[len(shown_1) :]  # custodian 1's screen was cleared
    assert not _COMPONENT.search(before_2[len(shown_1) :])
    con.send("")
    shown_2 = con.expect("record component 2, then press Enter to clear")
    m2 = _COMPONENT.search(shown_2[len(before_2) :])
    assert m2 and m2.group(1) == "2"
    con.send("")
    tail = con.expect("gets them at sign-on.")
    assert con.close() == 0

    c1, c2 = (bytes.fromhex(m.group(2).replace(" ", "")) for m in (m1, m2))
    assert m1.group(3) == kcv(c1, Algorithm.TDES2) and m2.group(3) == kcv(c2, Algorithm.TDES2)
    kek = adjust_parity(xor(c1, c2))
    assert f"KEK KCV {kcv(kek)}" in tail[len(shown_2) :]  # the combined KCV at the end
    with KeyStore.open(data) as store:
        kek_row = next(k for k in store.list_keys("T0000001") if k.key_type.value == "KEK")
        change = store.rotate("T0000001")
    assert kek_row.kcv == kcv(kek)
    assert install_key_change(kek, change.payload).get(change.keys[0].key_type)


def test_a_ceremony_broken_off_before_the_second_custodian_stores_nothing(data: Path) -> None:
    out = io.StringIO()
    custodians = Custodians(io.StringIO("\n\n"), out)  # custodian 2 never confirms
    with KeyStore.open(data) as store, pytest.raises(Exception, match="abandoned before compo"):
        new_terminal(store, "T1", Family.TDES, custodians=custodians, actor="test")
    assert "component 1:" in out.getvalue() and "component 2:" not in out.getvalue()
    assert out.getvalue().endswith(
        CLEAR_SCREEN + "custodian 2, alone at the screen: press Enter to see component 2 "
    )
    assert owners(data) == []


def test_component_files_are_0600_and_never_overwritten(
    capsys: pytest.CaptureFixture[str], data: Path, tmp_path: Path
) -> None:
    out_dir = tmp_path / "ceremony"
    out_dir.mkdir()
    rc, out, err = run(capsys, "add-terminal", "T1", "--component-files", str(out_dir))
    assert rc == 0, err
    files = sorted(out_dir.iterdir())
    assert [f.name for f in files] == ["T1-component-1.txt", "T1-component-2.txt"]
    comps = []
    for f in files:
        assert stat.S_IMODE(f.stat().st_mode) == 0o600
        hex_line = next(s for s in f.read_text().splitlines() if not s.startswith("#"))
        comps.append(bytes.fromhex(hex_line.replace(" ", "")))
        assert hex_line not in out and hex_line.replace(" ", "") not in out
    assert f"KEK KCV {kcv(adjust_parity(xor(*comps)))}" in out

    (out_dir / "T2-component-2.txt").write_text("someone else's\n")
    rc, _, err = run(capsys, "add-terminal", "T2", "--component-files", str(out_dir))
    assert rc == 2 and "T2-component-2.txt already exists" in one_line(err)
    assert (out_dir / "T2-component-2.txt").read_text() == "someone else's\n"
    assert not (out_dir / "T2-component-1.txt").exists()
    assert owners(data) == ["T1"]


def test_without_a_terminal_or_files_no_component_is_shown(
    capsys: pytest.CaptureFixture[str], data: Path
) -> None:
    rc, out, err = run(capsys, "add-terminal", "T1")
    assert rc == 2 and "--component-files" in one_line(err)
    assert "component" not in out and owners(data) == []


@pytest.mark.parametrize(
    "argv",
    [
        ["add-terminal", "T1", "--component", C1, "--component", C2],
        ["add-terminal", "T1", f"--component={C1}"],
        ["add-acquirer", "acq", "--component", C1, "--component", C2, "--kcv", ZMK_KCV],
    ],
)
def test_components_on_the_command_line_are_refused(
    capsys: pytest.CaptureFixture[str], data: Path, argv: list[str]
) -> None:
    rc, out, err = run(capsys, *argv)
    line = one_line(err)
    assert rc == 2 and "--component-file" in line and "ps" in line
    assert C1 not in err + out and C2 not in err + out
    assert owners(data) == []


# What an option of add-terminal / add-acquirer may carry: names, paths, KCVs.
NOT_SECRET = {
    "terminal_id",
    "name",
    "algorithm",
    "component_files",
    "component_file",
    "component_kcv",
    "kcv",
    "components",
    "help",
}


@pytest.mark.parametrize("add", [add_terminal_arguments, add_acquirer_arguments])
def test_no_option_takes_a_key(add: object) -> None:
    parser = argparse.ArgumentParser()
    add(parser)  # type: ignore[operator]
    for action in parser._actions:
        if action.nargs == 0 or action.help == argparse.SUPPRESS:
            continue  # flags, and the refused --component
        assert action.dest in NOT_SECRET, action.option_strings


def write(path: Path, hex_text: str) -> Path:
    path.write_text(f"# a custodian's component\n{hex_text}\n")
    return path


@pytest.mark.parametrize(
    ("kcvs", "combined", "named"),
    [
        ((C1_KCV, "FFFFFF"), ZMK_KCV, "component 2 does not match KCV FFFFFF"),
        (("0000", C2_KCV), ZMK_KCV, "component 1 does not match KCV 0000"),
        ((C1_KCV, C2_KCV), "ABCDEF", "the ZMK made of these components does not match"),
    ],
)
def test_an_acquirer_with_a_wrong_kcv_is_named_and_not_stored(
    capsys: pytest.CaptureFixture[str],
    data: Path,
    tmp_path: Path,
    kcvs: tuple[str, str],
    combined: str,
    named: str,
) -> None:
    f1, f2 = write(tmp_path / "c1", C1), write(tmp_path / "c2", C2)
    rc, _, err = run(
        capsys,
        "add-acquirer",
        "acq",
        *("--component-file", str(f1), "--component-file", str(f2)),
        *("--component-kcv", kcvs[0], "--component-kcv", kcvs[1], "--kcv", combined),
    )
    line = one_line(err)
    assert rc == 2 and named in line and "nothing stored" in line
    assert ZMK_KCV not in line.replace(combined, "")  # the actual KCV is not given away
    assert C1 not in err and C2 not in err
    assert owners(data) == []


def test_an_acquirer_from_files_with_correct_kcvs(
    capsys: pytest.CaptureFixture[str], data: Path, tmp_path: Path
) -> None:
    f1, f2 = write(tmp_path / "c1", C1), write(tmp_path / "c2", C2.lower())
    rc, out, err = run(
        capsys,
        "add-acquirer",
        "acq",
        *("--component-file", str(f1), "--component-file", str(f2)),
        *("--component-kcv", C1_KCV, "--component-kcv", C2_KCV[:4].lower(), "--kcv", ZMK_KCV),
    )
    assert rc == 0, err
    assert f"ZMK tdes2 KCV {ZMK_KCV}" in out
    with KeyStore.open(data) as store:
        zmk = next(k for k in store.list_keys("acq") if k.key_type.value == "ZMK")
    assert zmk.kcv == ZMK_KCV


def test_component_kcvs_cannot_be_skipped(
    capsys: pytest.CaptureFixture[str], data: Path, tmp_path: Path
) -> None:
    f1, f2 = write(tmp_path / "c1", C1), write(tmp_path / "c2", C2)
    files = ("--component-file", str(f1), "--component-file", str(f2))
    for extra in ([], ["--kcv", ZMK_KCV]):
        rc, _, err = run(capsys, "add-acquirer", "acq", *files, *extra)
        assert rc == 2 and "give --component-kcv HEX for each" in one_line(err), extra
    rc, _, err = run(capsys, "add-acquirer", "acq", *files, "--component-kcv", C1_KCV)
    assert rc == 2 and "--component-kcv once per component (2)" in one_line(err)
    rc, _, err = run(
        capsys, "add-acquirer", "acq", *files, "--component-kcv", C1_KCV, "--component-kcv", C2_KCV
    )
    assert rc == 2 and one_line(err).endswith("give --kcv HEX")
    assert owners(data) == []


def test_a_terminal_imported_from_the_generated_files(
    capsys: pytest.CaptureFixture[str], data: Path, tmp_path: Path
) -> None:
    out_dir = tmp_path / "ceremony"
    out_dir.mkdir()
    rc, out, _ = run(capsys, "add-terminal", "T1", "--component-files", str(out_dir))
    assert rc == 0
    kek_kcv = re.search(r"KEK KCV ([0-9A-F]{6})", out).group(1)  # type: ignore[union-attr]
    comp_kcvs = re.findall(r"component \d KCV ([0-9A-F]{6})", out)
    files = [str(out_dir / f"T1-component-{i}.txt") for i in (1, 2)]
    base = ["add-terminal", "T2", "--component-file", files[0], "--component-file", files[1]]
    rc, _, err = run(
        capsys,
        *base,
        "--component-kcv",
        comp_kcvs[1],
        "--component-kcv",
        comp_kcvs[1],
        "--kcv",
        kek_kcv,
    )
    assert rc == 2 and "component 1 does not match" in one_line(err)
    assert owners(data) == ["T1"]
    rc, out, err = run(
        capsys,
        *base,
        "--component-kcv",
        comp_kcvs[0],
        "--component-kcv",
        comp_kcvs[1],
        "--kcv",
        kek_kcv,
    )
    assert rc == 0, err
    assert f"KEK KCV {kek_kcv}" in out
    assert owners(data) == ["T1", "T2"]


def test_components_typed_at_the_prompt_are_not_echoed(data: Path, consoles: list[Console]) -> None:
    con = Console(data, "add-acquirer", "acq")
    consoles.append(con)
    for number, (component, check) in enumerate(((C1, C1_KCV), (C2, C2_KCV)), 1):
        con.expect(f"component {number} (hex, not shown): ")
        assert not any(component in arg for arg in con.argv())
        con.send(component)
        con.expect(f"component {number} KCV: ")
        con.send(check)
        con.expect(f"component {number} matches its KCV")
    con.expect("ZMK KCV: ")
    con.send(ZMK_KCV)
    con.expect("ZAK/ZPK v1 active")
    assert con.close() == 0
    assert C1 not in con.seen and C2 not in con.seen
    assert owners(data) == ["acq"]


def test_a_wrong_component_kcv_at_the_prompt_stops_at_that_component(data: Path) -> None:
    out = io.StringIO()
    custodians = Custodians(io.StringIO(f"{C1}\nABCDEF\n{C2}\n{C2_KCV}\n{ZMK_KCV}\n"), out)
    with KeyStore.open(data) as store, pytest.raises(KcvMismatch, match="component 1 does"):
        import_acquirer(store, "acq", custodians=custodians, actor="test")
    assert "component 2" not in out.getvalue()
    assert owners(data) == []


def test_a_terminal_typed_in_with_a_wrong_kek_kcv_is_not_stored(data: Path) -> None:
    def answers(kek_kcv: str) -> io.StringIO:
        return io.StringIO(f"{C1}\n{C1_KCV}\n{C2}\n{C2_KCV}\n{kek_kcv}\n")

    out = io.StringIO()
    with KeyStore.open(data) as store, pytest.raises(KcvMismatch, match="the KEK made of these"):
        import_terminal(
            store, "T1", Family.TDES, custodians=Custodians(answers("ABCDEF"), out), actor="t"
        )
    assert "component 2 matches its KCV" in out.getvalue()
    assert owners(data) == []
    with KeyStore.open(data) as store:
        c = import_terminal(
            store,
            "T1",
            Family.TDES,
            custodians=Custodians(answers(ZMK_KCV), out),
            actor="t",
        )
    assert c.kcv == ZMK_KCV  # the same XOR, parity set, as the ZMK above
    assert owners(data) == ["T1"]


def test_one_custodian_cannot_bring_both_components(
    capsys: pytest.CaptureFixture[str], data: Path, tmp_path: Path
) -> None:
    f1 = write(tmp_path / "c1", C1)
    rc, _, err = run(
        capsys,
        "add-acquirer",
        "acq",
        *("--component-file", str(f1), "--component-file", str(f1)),
        *("--component-kcv", C1_KCV, "--component-kcv", C1_KCV, "--kcv", "0000"),
    )
    assert rc == 2 and "component 2 is the same as component 1" in one_line(err)
    assert owners(data) == []
