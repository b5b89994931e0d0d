"""`forecourt recon` as an operator runs it: a real subprocess on a real journal file,
each command's output, and each mistake as one line with a non-zero exit."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import trio
from forecourt.switch.journal import open_journal

from tests.operators.cli_runs import forecourt, one_line_failure
from tests.recon import scenario


def _setup(tmp: Path) -> Path:
    config = tmp / "forecourt.toml"
    config.write_text(scenario.CONFIG.format(data_dir=tmp / "data", database=""))

    async def seed() -> None:
        async with open_journal(scenario.config(tmp / "data")) as journal:
            await scenario.journal_day(journal)

    (tmp / "data").mkdir()
    trio.run(seed)
    return config


@pytest.mark.slow
def test_import_run_items_resolve_report(tmp_path: Path) -> None:
    config = _setup(tmp_path)
    settlement = scenario.csv_file(tmp_path / "bank-1201.csv")
    c = ("--config", config)

    imported = forecourt("recon", "import", *c, "--party", "bank", settlement)
    assert imported.returncode == 0, imported.stderr
    n = sum(len(lines) for _, _, lines, _ in scenario.PLANTED.values()) + 1  # + the next day's
    assert f"{n} lines read, {n} new for bank" in imported.stdout
    again = forecourt("recon", "import", *c, "--party", "bank", settlement)
    assert "imported before" in again.stdout and again.returncode == 0

    run = forecourt("recon", "run", *c, "--party", "bank", "--day", "2026-12-01")
    assert run.returncode == 0, run.stderr
    differences = sum(
        len(refs) for c, refs in scenario.expected_classes().items() if c != "matched"
    )
    assert "at the switch only" in run.stdout
    assert f"{differences} new error items" in run.stdout

    listed = forecourt("recon", "items", *c, "--party", "bank")
    assert listed.returncode == 0, listed.stderr
    assert "476173******0010" in listed.stdout and "4761739001010010" not in listed.stdout
    first = next(
        line.split("│")[1].strip() for line in listed.stdout.splitlines() if "duplicate" in line
    )

    done = forecourt("recon", "resolve", first, *c, "--action", "resolve", "--operator", "alice")
    assert done.returncode == 0, done.stderr
    assert "closed by alice" in done.stdout
    twice = forecourt("recon", "resolve", first, *c, "--action", "resolve", "--operator", "bob")
    assert "is resolved already" in one_line_failure(twice)

    out = tmp_path / "report.csv"
    report = forecourt(
        "recon", "report", *c, "--party", "bank", "--day", "2026-12-01", "--csv", out
    )
    assert report.returncode == 0, report.stderr
    assert f"{differences - 1} items still open" in report.stdout
    rows = list(csv.DictReader(out.read_text().splitlines()))
    assert {r["class"] for r in rows} == {
        "switch_only", "party_only", "amount_differs", "duplicate", "reversed_settled",
    }  # fmt: skip


@pytest.mark.slow
def test_mistakes_are_one_line(tmp_path: Path) -> None:
    config = _setup(tmp_path)
    c = ("--config", config)
    bad = scenario.malformed_file(tmp_path / "bad.csv")
    line = one_line_failure(forecourt("recon", "import", *c, "--party", "bank", bad))
    assert "line 3: amount '25.00'" in line
    assert "no party 'nobank'" in one_line_failure(
        forecourt("recon", "run", *c, "--party", "nobank", "--day", "2026-12-01")
    )
    assert "YYYY-MM-DD" in one_line_failure(
        forecourt("recon", "run", *c, "--party", "bank", "--day", "1 Dec")
    )
    assert "no such file" in one_line_failure(
        forecourt("recon", "import", *c, "--party", "bank", tmp_path / "absent.csv")
    )
    assert "never matched" in one_line_failure(
        forecourt(
            "recon",
            "report",
            *c,
            "--party",
            "bank",
            "--day",
            "2026-12-01",
            "--csv",
            tmp_path / "r.csv",
        )
    )
