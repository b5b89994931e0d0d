"""`forecourt journal ...` and `forecourt db migrate` on a real journal file."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from forecourt.switch import journal_cli
from forecourt.switch.cli import _ArgumentParser
from forecourt.switch.journal import LATEST_VERSION, JournalRow, open_journal
from forecourt.switch.journal.postgres import PG_LATEST_VERSION

KEY = bytes(32)


def run(*argv: str) -> int:
    parser = _ArgumentParser(prog="forecourt")
    journal_cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(list(argv))
    return int(args.func(args))


@pytest.fixture
async def data_dir(tmp_path: Path) -> Path:
    async with open_journal(tmp_path / "journal.db", saf_key=KEY) as journal:
        for i, state in enumerate(["approved", "declined", "forwarded"]):
            r = JournalRow(
                txn_id=f"TXN{i}",
                node="n1",
                terminal_id="T0000001" if i < 2 else "T0000002",
                stan=f"{i + 1:06d}",
                mti_class="2",
                request_mti="1200",
                received_at=time.time() + i,
                amount=1000 * (i + 1),
                currency="978",
                masked_pan="411111******1111",
                shift_id="S1",
            )
            await journal.record_received(r)
            if state != "forwarded":
                await journal.update(r.txn_id, state=state, action_code="000")
        await journal.saf_enqueue("TXN2", "bank", "1420", b"x", now=1.0)
        (item,) = await journal.saf_claim(now=2.0)
        await journal.saf_flag(item.id, "max attempts")
        await journal.shift_close("T0000001", "S1", {}, False)
    return tmp_path


async def test_list_show_saf_totals(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = str(data_dir)
    assert run("journal", "list", "--data-dir", d) == 0
    out = capsys.readouterr().out
    assert "TXN0" in out and "TXN2" in out and "411111******1111" in out
    assert run("journal", "list", "--data-dir", d, "--terminal", "T0000002") == 0
    out = capsys.readouterr().out
    assert "TXN2" in out and "TXN0" not in out
    assert run("journal", "list", "--data-dir", d, "--state", "declined", "--limit", "5") == 0
    out = capsys.readouterr().out
    assert "TXN1" in out and "TXN0" not in out

    assert run("journal", "show", "TXN0", "--data-dir", d) == 0
    out = capsys.readouterr().out
    assert "masked_pan" in out and "approved" in out and "events" in out

    assert run("journal", "saf", "--data-dir", d) == 0
    out = capsys.readouterr().out
    assert "flagged" in out and "max attempts" in out

    assert run("journal", "totals", "--terminal", "T0000001", "--shift", "S1", "--data-dir", d) == 0
    out = capsys.readouterr().out
    assert "debit" in out and "1000" in out and "declined" in out and "OUT OF BALANCE" in out


async def test_config_location(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (data_dir / "sw.toml").write_text('data_dir = "."\n')
    assert run("journal", "list", "--config", str(data_dir / "sw.toml")) == 0
    assert "TXN0" in capsys.readouterr().out


def test_migrate_creates_the_schema(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("db", "migrate", "--data-dir", str(tmp_path / "new")) == 0
    assert f"schema version {LATEST_VERSION}" in capsys.readouterr().out
    assert (tmp_path / "new" / "journal.db").exists()
    assert run("db", "migrate", "--data-dir", str(tmp_path / "new")) == 0


@pytest.mark.parametrize(
    "argv",
    [
        ("journal", "list", "--data-dir", "{d}/missing"),
        ("journal", "show", "NOPE", "--data-dir", "{d}"),
        ("journal", "list", "--limit", "0", "--data-dir", "{d}"),
        ("journal", "list", "--database", "postgresql://x/y"),
        ("journal", "list", "--config", "{d}/none.toml"),
    ],
)
async def test_bad_input_exits_2_with_one_line(
    data_dir: Path, capsys: pytest.CaptureFixture[str], argv: tuple[str, ...]
) -> None:
    assert run(*(a.replace("{d}", str(data_dir)) for a in argv)) == 2
    err = capsys.readouterr().err
    assert err.startswith("forecourt: error: ") and err.count("\n") == 1


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        run("journal", "list", "--state", "bogus")
    assert info.value.code == 2
    assert capsys.readouterr().err.count("\n") == 1


@pytest.mark.postgres
async def test_postgres_migrate_and_read(
    postgres_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("db", "migrate", "--database", postgres_db) == 0
    out = capsys.readouterr().out
    assert f"schema version {PG_LATEST_VERSION}" in out
    assert run("db", "migrate", "--database", postgres_db) == 0  # twice is harmless
    capsys.readouterr()
    async with open_journal(postgres_db, saf_key=KEY) as journal:
        await journal.record_received(
            JournalRow(
                txn_id="TXNPG",
                node="n1",
                terminal_id="T0000009",
                stan="000001",
                mti_class="2",
                request_mti="1200",
                received_at=time.time(),
                amount=1234,
                masked_pan="411111******1111",
                shift_id="S1",
            )
        )
        await journal.update("TXNPG", state="approved", action_code="000")
    assert run("journal", "list", "--database", postgres_db) == 0
    assert "TXNPG" in capsys.readouterr().out
    assert run("journal", "show", "TXNPG", "--database", postgres_db) == 0
    assert "approved" in capsys.readouterr().out
    assert run("journal", "saf", "--database", postgres_db) == 0
    assert "depth" in capsys.readouterr().out
    cmd = ("journal", "totals", "--terminal", "T0000009", "--shift", "S1")
    assert run(*cmd, "--database", postgres_db) == 0
    assert "1234" in capsys.readouterr().out
