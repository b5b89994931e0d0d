"""`forecourt keys ...` through the real entry point."""

from __future__ import annotations

from pathlib import Path

import forecourt.switch.cli as switch_cli
import pytest
from forecourt.keys import KeyStore, install_key_change


@pytest.fixture(autouse=True)
def _only_keys(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # Other parts' command modules are written in parallel; load only ours.
    monkeypatch.setattr(switch_cli, "COMMAND_MODULES", ("forecourt.keys.cli",))
    monkeypatch.delenv("FORECOURT_LMK", raising=False)
    monkeypatch.setenv("FORECOURT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)


INIT = ("init", "--lmk-file", "etc/lmk.key")  # outside the data directory; later commands find it


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        rc = switch_cli.main(["keys", *argv])
    except SystemExit as e:  # argparse usage errors
        rc = int(e.code or 0)
    out, err = capsys.readouterr()
    return rc, out, err


def test_keys_module_is_registered() -> None:
    assert '"forecourt.keys.cli"' in Path(switch_cli.__file__).read_text()


def test_full_operator_flow(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    rc, out, _ = run(capsys, *INIT)
    assert rc == 0 and "LMK KCV" in out
    rc, _, err = run(capsys, *INIT)
    assert rc == 2 and len(err.strip().splitlines()) == 1

    ceremony = tmp_path / "ceremony"
    ceremony.mkdir()
    rc, out, _ = run(capsys, "add-terminal", "T0000001", "--component-files", str(ceremony))
    assert rc == 0
    comps = [
        bytes.fromhex(next(s for s in f.read_text().splitlines() if not s.startswith("#")))
        for f in sorted(ceremony.glob("T0000001-component-*.txt"))
    ]
    assert len(comps) == 2
    kek = bytes(a ^ b for a, b in zip(comps[0], comps[1], strict=True))
    kcv_line = next(line for line in out.splitlines() if "KEK KCV" in line)
    rc, out2, _ = run(capsys, "calc", "kcv", "--key", kek.hex())
    assert rc == 0 and out2.strip() == kcv_line.split()[-1]

    rc, out, _ = run(
        capsys, "add-terminal", "T2", "--algorithm", "aes", "--component-files", str(ceremony)
    )
    assert rc == 0

    c1, c2 = tmp_path / "zmk-1", tmp_path / "zmk-2"
    c1.write_text("0123456789ABCDEFFEDCBA9876543210\n")
    c2.write_text("1111111111111111FFFFFFFFFFFFFFFF\n")
    files = ("--component-file", str(c1), "--component-file", str(c2))
    kcvs = ("--component-kcv", "08D7B4", "--component-kcv", "63F451")
    rc, _, err = run(capsys, "add-acquirer", "acq", *files, *kcvs, "--kcv", "FFFFFF")
    assert rc == 2 and "KCV" in err and len(err.strip().splitlines()) == 1
    rc, out, _ = run(capsys, "add-acquirer", "acq", *files, *kcvs, "--kcv", "77C58C")
    assert rc == 0 and "ZMK" in out

    rc, out, _ = run(capsys, "rotate", "T0000001", "--reason", "test", "--grace", "60")
    assert rc == 0 and "TAK v2" in out and "pending" in out
    rc, out, _ = run(capsys, "rotate", "--all", "--activate")
    assert rc == 0 and len(out.strip().splitlines()) == 3 and "active" in out

    rc, out, _ = run(capsys, "list")
    assert rc == 0 and "T0000001" in out and "retiring" in out and "ZAK" in out
    rc, out, _ = run(capsys, "list", "--owner", "acq")
    assert rc == 0 and "T0000001" not in out
    rc, out, _ = run(capsys, "audit", "--since", "1h")
    assert rc == 0 and "rotate" in out and "activate" in out
    rc, out, _ = run(capsys, "audit", "--since", "2000-01-01T00:00:00")
    assert rc == 0 and "add-terminal" in out

    # the clear KEK printed once really opens the store's deliveries
    with KeyStore.open(tmp_path / "data") as store:
        change = store.rotate("T0000001")
    assert install_key_change(kek, change.payload).get(change.keys[0].key_type)


@pytest.mark.parametrize(
    "argv",
    [
        ["rotate", "T1"],  # store missing
        ["list"],
        ["bogus"],
        ["calc", "mac", "--algorithm", "retail", "--key", "XYZ", "--data", "00"],
        ["calc", "mac", "--algorithm", "retail", "--key", "0011", "--data", "00"],
        ["calc", "mac", "--algorithm", "sha", "--key", "00", "--data", "00"],
        ["calc", "kcv", "--key", "001122"],
        ["calc", "kcv", "--key", "0123456789ABCDEFFEDCBA9876543210FF"],
    ],
)
def test_bad_input_exits_2_with_one_line(
    capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    rc, _, err = run(capsys, *argv)
    assert rc == 2
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


def test_bad_input_on_a_store(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, *INIT)[0] == 0
    for argv in (
        ["add-terminal", "way-too-long-id"],
        ["rotate", "NOPE"],
        ["rotate"],
        ["rotate", "X", "--all"],
        ["rotate", "X", "--grace", "-1"],
        ["add-acquirer", "a", "--component", "00"],
        ["add-acquirer", "a", "--component-file", "/nonexistent", "--component-file", "/x"],
        ["add-acquirer", "a", "--components", "1"],
        ["add-acquirer", "a", "--kcv", "XYZ"],
        ["add-terminal", "T1", "--component-file", "/nonexistent"],
        ["add-terminal", "T1", "--import", "--component-files", "/tmp"],
        ["add-terminal", "T1", "--kcv", "ABCD"],
        ["audit", "--since", "yesterday"],
    ):
        rc, _, err = run(capsys, *argv)
        assert rc == 2, argv
        assert len(err.strip().splitlines()) == 1, (argv, err)


def test_wrong_lmk_exits_2(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run(capsys, *INIT)[0] == 0
    monkeypatch.setenv("FORECOURT_LMK", "11" * 32)
    rc, _, err = run(capsys, "list")
    assert rc == 2 and "KCV" in err and "11" * 32 not in err


def test_calculators(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run(
        capsys,
        "calc",
        "mac",
        "--algorithm",
        "cmac",
        "--key",
        "2b7e151628aed2a6abf7158809cf4f3c",
        "--data",
        "",
    )
    assert (rc, out) == (0, "BB1D6929E9593728\n")
    rc, out, _ = run(
        capsys,
        "calc",
        "mac",
        "--algorithm",
        "retail",
        "--key",
        "7962D9ECE03D1ACD4C76089DCE131543",
        "--data",
        "72C29C2371CC9BDB65B779B8E8D37B29ECC154AA56A8799FAE2F498F76ED92F28000000000000000",
    )
    assert (rc, out) == (0, "5F1448EEA8AD90A7\n")
    rc, out, _ = run(capsys, "calc", "kcv", "--key", "0123456789ABCDEFFEDCBA9876543210")
    assert (rc, out) == (0, "08D7B4\n")
    rc, out, _ = run(
        capsys, "calc", "kcv", "--key", "2b7e151628aed2a6abf7158809cf4f3c", "--algorithm", "aes"
    )
    assert rc == 0 and len(out.strip()) == 6
