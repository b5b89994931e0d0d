"""Where the LMK lives: outside the data directory, refused inside it, written 0600.

Through the real `forecourt keys` entry point and, for `serve`, a real process.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import forecourt.switch.cli as switch_cli
import pytest
from forecourt.keys import KeyStore, Lmk, LmkInDataDir, LmkInvalid

from . import serving


@pytest.fixture(autouse=True)
def _only_keys(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(switch_cli, "COMMAND_MODULES", ("forecourt.keys.cli",))
    monkeypatch.delenv("FORECOURT_LMK", raising=False)
    monkeypatch.delenv("FORECOURT_DATA_DIR", raising=False)
    monkeypatch.chdir(tmp_path)


def keys(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        rc = switch_cli.main(["keys", *argv])
    except SystemExit as e:
        rc = int(e.code or 0)
    out, err = capsys.readouterr()
    return rc, out, err


def _one_line_naming(err: str, *words: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for w in words:
        assert w in lines[0], (w, lines[0])


def test_keys_refuse_an_lmk_in_the_data_dir(capsys: pytest.CaptureFixture[str]) -> None:
    # by default (no --lmk-file) and when named explicitly: nothing is written
    for extra in ([], ["--lmk-file", "data/lmk.key"], ["--lmk-file", "data/sub/../lmk.key"]):
        rc, _, err = keys(capsys, "init", "--data-dir", "data", *extra)
        assert rc == 2
        _one_line_naming(err, "lmk.key", "inside the data directory", "--lmk-file")
        assert not Path("data/keys.db").exists() and not Path("data/lmk.key").exists()
    # a demo may
    rc, _, _ = keys(capsys, "init", "--data-dir", "data", "--allow-lmk-in-data-dir")
    assert rc == 0 and Path("data/lmk.key").exists()
    # every later command refuses it again without the flag, with the same one line
    rc, _, err = keys(capsys, "list", "--data-dir", "data")
    assert rc == 2
    _one_line_naming(err, "data/lmk.key", "inside the data directory", "[keys] lmk_file")
    rc, _, err = keys(capsys, "list", "--data-dir", "data", "--lmk-file", "data/lmk.key")
    assert rc == 2
    _one_line_naming(err, "inside the data directory")
    assert keys(capsys, "list", "--data-dir", "data", "--allow-lmk-in-data-dir")[0] == 0
    # a symbolic link out of the data directory to the file inside is still inside
    Path("etc").mkdir()
    Path("etc/lmk.key").symlink_to(Path("data/lmk.key").resolve())
    rc, _, err = keys(capsys, "list", "--data-dir", "data", "--lmk-file", "etc/lmk.key")
    assert rc == 2
    _one_line_naming(err, "inside the data directory")


@pytest.fixture
def umask_022() -> Iterator[None]:
    """What a default login gets; private files must not follow it."""
    old = os.umask(0o022)
    yield
    os.umask(old)


@pytest.mark.usefixtures("umask_022")
def test_keys_init_writes_the_lmk_file_0600_outside(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    rc, out, _ = keys(capsys, "init", "--data-dir", "data", "--lmk-file", "etc/forecourt/lmk.key")
    assert rc == 0
    lmk_file = tmp_path / "etc" / "forecourt" / "lmk.key"
    assert stat.S_IMODE(lmk_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(lmk_file.parent.stat().st_mode) == 0o700  # created by init
    lmk = Lmk.from_hex(lmk_file.read_text())
    assert lmk.kcv in out
    assert not any(p.name == "lmk.key" for p in (tmp_path / "data").rglob("*"))
    # later commands find the LMK where init wrote it (no --lmk-file needed)
    (tmp_path / "components").mkdir()
    rc, _, err = keys(
        capsys, "add-terminal", "T0000001", "--data-dir", "data", "--component-files", "components"
    )
    assert rc == 0, err
    with KeyStore.open(tmp_path / "data") as store:
        assert store.lmk_kcv == lmk.kcv
    # init never overwrites an LMK file: a second store reuses it, unchanged
    before = lmk_file.read_bytes()
    rc, out, _ = keys(capsys, "init", "--data-dir", "other", "--lmk-file", str(lmk_file))
    assert rc == 0 and lmk.kcv in out and lmk_file.read_bytes() == before
    with pytest.raises(LmkInvalid, match="already exists"):
        Lmk.generate().write(lmk_file)
    assert lmk_file.read_bytes() == before


def test_the_library_refuses_too(tmp_path: Path) -> None:
    d = tmp_path / "data"
    with pytest.raises(LmkInDataDir):
        KeyStore.init(d)
    with pytest.raises(LmkInDataDir):
        KeyStore.init(d, lmk_file=d / "x" / "lmk.key")
    KeyStore.init(d, allow_lmk_in_data_dir=True).close()
    with pytest.raises(LmkInDataDir):
        KeyStore.open(d)
    KeyStore.open(d, allow_lmk_in_data_dir=True).close()
    # an LMK handed over in memory (or in FORECOURT_LMK) is no file: nothing to refuse
    lmk = Lmk.from_hex((d / "lmk.key").read_text())
    KeyStore.open(d, lmk=lmk).close()


# -- serve -------------------------------------------------------------------------


def test_serve_refuses_an_lmk_in_the_data_dir(tmp_path: Path) -> None:
    serving.init(tmp_path, "--allow-lmk-in-data-dir")
    for table in ("", 'lmk_file = "data/lmk.key"'):
        done = serving.serve(serving.config(tmp_path, table))
        assert done.returncode == 2, done
        _one_line_naming(done.stderr, "lmk.key", "inside the data directory", "[keys] lmk_file")
        assert "switch_started" not in done.stdout
    done = serving.serve(serving.config(tmp_path, "allow_lmk_in_data_dir = true"))
    assert done.returncode == 0 and "switch_started" in done.stdout, done


def test_serve_reads_the_lmk_file_the_config_names(tmp_path: Path) -> None:
    serving.init(tmp_path, "--lmk-file", str(tmp_path / "secret" / "lmk.key"))
    (tmp_path / "secret" / "lmk.key").rename(tmp_path / "lmk.key")  # moved: init's note is stale
    done = serving.serve(serving.config(tmp_path, ""))
    assert done.returncode == 2 and "secret/lmk.key does not exist" in done.stderr, done
    # relative to the configuration file's folder
    done = serving.serve(serving.config(tmp_path, 'lmk_file = "lmk.key"'))
    assert done.returncode == 0 and "switch_started" in done.stdout, done
