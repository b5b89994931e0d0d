"""`forecourt journal shifts` lists the shifts; `journal totals` of a shift the journal
does not hold exits 2 with one line pointing at `journal shifts` (it printed an
empty table and exited 0). A real SQLite journal."""

from __future__ import annotations

from pathlib import Path

import pytest
from forecourt.switch.cli import main
from forecourt.switch.journal import open_journal

KEY = bytes(32)


@pytest.fixture
async def data_dir(tmp_path: Path) -> Path:
    async with open_journal(tmp_path / "journal.db", saf_key=KEY) as journal:
        await journal.shift_open("T0000001", "S1", at=1_000.0)
        await journal.shift_close("T0000001", "S1", {}, True)
        await journal.shift_open("T0000001", "S2", at=2_000.0)
        await journal.shift_open("T0000002", "A7", at=3_000.0)
        await journal.shift_close("T0000002", "A7", {}, False)
    return tmp_path


async def test_shifts_lists_newest_first(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["journal", "shifts", "--data-dir", str(data_dir)]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if "T000000" in line]
    assert [r.split()[3] for r in rows] == ["A7", "S2", "S1"]
    assert "OUT OF BALANCE" in rows[0] and "open" in rows[1] and "in balance" in rows[2]
    assert main(["journal", "shifts", "--data-dir", str(data_dir), "--terminal", "T0000002"]) == 0
    out = capsys.readouterr().out
    assert "A7" in out and "S1" not in out


async def test_totals_of_an_unknown_shift_exits_2(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["journal", "totals", "--terminal", "T0000001", "--shift", "S9"]
    assert main([*argv, "--data-dir", str(data_dir)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == [
        "forecourt: error: no shift 'S9' of terminal 'T0000001' in the journal:"
        " `forecourt journal shifts --terminal T0000001` lists its shifts"
    ]
    assert main(["journal", "totals", "--terminal", "T0000001", "--shift", "S1",
                 "--data-dir", str(data_dir)]) == 0  # fmt: skip
    assert "in balance" in capsys.readouterr().out
