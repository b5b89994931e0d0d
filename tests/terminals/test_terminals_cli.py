"""`forecourt terminals add-pending` as an operator runs it: the code printed once and
only its hash journalled, the code then registers; bad input is one line, exit 2."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import trio
from forecourt.switch.cli import main
from forecourt.switch.journal import open_journal
from forecourt.switch.terminals.registration import normalise_code

from tests.operators.cli_runs import forecourt
from tests.switch.harness import started_switch
from tests.terminals.messages import registration

_CODE = re.compile(r"^\s+([0-9A-Z]{4}(?:-[0-9A-Z]{4}){3})$", re.M)


async def test_add_pending_prints_a_code_that_registers_once(tmp_path: Path) -> None:
    async with started_switch(tmp_path / "data") as sut:
        config = tmp_path / "forecourt.toml"
        config.write_text(f'data_dir = "{sut.config.data_dir}"\n', encoding="utf-8")
        args = ("--terminal-id", "T0000002", "--expires-in", "600", "--serial", "SN-77")
        done = await trio.to_thread.run_sync(
            lambda: forecourt("terminals", "add-pending", "--config", config, *args)
        )
        assert done.returncode == 0, done.stderr
        (shown,) = _CODE.findall(done.stdout)
        assert "forecourt keys add-terminal T0000002" in done.stdout  # the KEK's ceremony
        async with sut.terminal("T0000002") as terminal:
            # the code as the installer typed it, dashes and all
            await terminal.send(registration(terminal, "SN-77", normalise_code(shown)), mac=False)
            assert (await terminal.receive()).fields["39"] == "800"
    async with open_journal(sut.config) as journal:
        (row,) = await journal.view("SELECT * FROM terminal_registrations")
    assert row["state"] == "registered" and str(row["code_hash"]).startswith("$argon2id$")
    assert normalise_code(shown) not in str(row)


def test_bad_input_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """In process (the subprocess path is the test above): exit 2, one line naming the
    option, no traceback, nothing journalled."""
    config = tmp_path / "forecourt.toml"
    config.write_text(f'data_dir = "{tmp_path}"\n', encoding="utf-8")
    for args, named in (
        (("--terminal-id", "T0000002", "--expires-in", "0"), "--expires-in"),
        (("--terminal-id", "T00000099"), "--terminal-id"),
        (("--terminal-id", "T1", "--max-attempts", "0"), "--max-attempts"),
        (("--terminal-id", "T1", "--serial", "S" * 33), "--serial"),
    ):
        assert main(["terminals", "add-pending", "--config", str(config), *args]) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and named in err and "Traceback" not in err
    assert main(["terminals"]) == 2
    assert "--config" in capsys.readouterr().err
    assert not (tmp_path / "journal.db").exists()
