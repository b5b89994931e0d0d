"""`forecourt day` as an operator runs it, on the shipped config: in process (each
command's own `trio.run`), and once as a real subprocess for the one-line failure."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import trio
from forecourt.switch.business_day import Cutover, day_bounds
from forecourt.switch.cli import main
from forecourt.switch.journal import open_journal

from tests.day.rows import insert, sale
from tests.operators.cli_runs import forecourt, one_line_failure, shipped_config

DAY = dt.date(2026, 11, 30)


def _run(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_close_list_show_and_the_operators_mistakes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = shipped_config(tmp_path)
    (tmp_path / "data").mkdir()
    start, _ = day_bounds(DAY, Cutover())

    async def journalled() -> None:
        async with open_journal(tmp_path / "data" / "journal.db") as journal:
            await insert(journal, sale(start + 60, 1234, terminal_id="T0000042"))

    trio.run(journalled)
    day = ("--config", config, "--day", DAY.isoformat())

    code, out, err = _run(capsys, "day", "close", *day)
    assert code == 0, err
    assert f"business day {DAY} closed by" in out
    assert "1 host totals queued" in out  # the shipped config's one ISO 8583 link
    code, out, _ = _run(capsys, "day", "close", *day)
    assert code == 0 and "closed already" in out

    code, out, _ = _run(capsys, "day", "list", "--config", config)
    assert code == 0 and DAY.isoformat() in out
    code, out, err = _run(capsys, "day", "show", *day, "--by", "terminal")
    assert code == 0, err
    assert "T0000042" in out and "1234" in out and "host totals" in out

    code, _, err = _run(capsys, "day", "show", "--config", config, "--day", "30/11")
    assert code == 2 and "--day" in err and "YYYY-MM-DD" in err
    code, _, err = _run(capsys, "day", "host-totals", "--config", config, "--acquirer", "ledger")
    assert code == 2 and "'ledger'" in err and "bank" in err
    # no switch runs: the request stays queued, and the command says so
    code, _, err = _run(capsys, "day", "host-totals", *day, "--wait", "0")
    assert code == 1 and "still queued" in err

    tomorrow = (dt.date.today() + dt.timedelta(days=2)).isoformat()
    line = one_line_failure(forecourt("day", "close", "--config", config, "--day", tomorrow))
    assert "has not ended" in line
