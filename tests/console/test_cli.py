"""`forecourt console` and `forecourt console add-operator`: what they print and
how they exit (one line and exit 2 for an operator's mistake, no traceback)."""

from __future__ import annotations

import io
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
import trio
from forecourt.console.data import ConsoleData
from forecourt.keys.store import KeyStore
from forecourt.switch.cli import main
from forecourt.switch.journal import open_journal

PASSWORD = "a long test passphrase"  # test only


@pytest.fixture(autouse=True)
def _structlog_restored() -> Iterator[None]:
    """`console` configures logging onto the captured stdout, which pytest closes."""
    yield
    structlog.reset_defaults()


def _config(tmp_path: Path, *, keys: bool = True) -> Path:
    data_dir = tmp_path / "data"
    if keys:
        KeyStore.init(data_dir, lmk_file=tmp_path / "lmk.key").close()
    path = tmp_path / "forecourt.toml"
    path.write_text(f'node = "n1"\ndata_dir = "{data_dir}"\n')
    return path


def _run(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], stdin: str, *argv: str
) -> tuple[int, str, str]:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_add_operator_reads_the_password_from_stdin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path)
    args = ("console", "add-operator", "alice", "--role", "operator", "--config", str(config))
    code, out, err = _run(monkeypatch, capsys, PASSWORD + "\n", *args)
    assert (code, out, err) == (0, "operator alice added as operator\n", "")

    async def stored() -> tuple[str, str]:
        async with open_journal(config.parent / "data" / "journal.db") as journal:
            data = ConsoleData(journal)
            try:
                alice = await data.operator("alice")
                audit = await data.console_audit()
            finally:
                data.close()
        assert alice is not None and audit
        return alice.password_hash, audit[0].action

    password_hash, action = trio.run(stored)
    assert password_hash.startswith("$argon2id$") and action == "add_operator"

    code, _, err = _run(monkeypatch, capsys, PASSWORD + "\n", *args)
    assert code == 2 and err == "forecourt: error: operator 'alice' exists: choose another name\n"


@pytest.mark.parametrize(
    ("argv", "stdin", "message"),
    [
        (("bob", "--role", "viewer"), "short\n", "password: at least 12 characters"),
        (("Bob!", "--role", "viewer"), PASSWORD, "operator name 'Bob!': use 1-32 of a-z"),
    ],
)
def test_add_operator_mistakes_are_one_line(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: tuple[str, ...],
    stdin: str,
    message: str,
) -> None:
    config = _config(tmp_path)
    code, out, err = _run(
        monkeypatch, capsys, stdin, "console", "add-operator", *argv, "--config", str(config)
    )
    assert code == 2 and out == ""
    assert err.startswith(f"forecourt: error: {message}") and err.count("\n") == 1


def test_console_mistakes_are_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _run(monkeypatch, capsys, "", "console")
    assert code == 2 and err == (
        "forecourt: error: console: give the switch configuration with --config FILE\n"
    )
    no_keys = _config(tmp_path, keys=False)
    code, _, err = _run(monkeypatch, capsys, "", "console", "--config", str(no_keys))
    assert code == 2 and "forecourt keys init" in err and err.count("\n") == 1
    config = _config(tmp_path / "ok")
    code, _, err = _run(
        monkeypatch, capsys, "", "console", "--config", str(config), "--listen", "nowhere"
    )
    assert code == 2 and "use HOST:PORT" in err


def test_a_port_in_use_is_one_line_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, _, err = _run(
            monkeypatch, capsys, "", "console", "--config", str(config),
            "--listen", f"127.0.0.1:{port}",
        )  # fmt: skip
    assert code == 2
    assert err.startswith(f"forecourt: error: console: cannot listen on 127.0.0.1:{port}")
    assert err.count("\n") == 1
