"""`forecourt accounts`: every change audited with its operator, cards shown masked,
and operators' mistakes answered with one line and exit 2 (no traceback)."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest
from forecourt.switch.cli import main

PAN = "7077001234567890"
CONFIG = """
node = "cli-test"
data_dir = "{data_dir}"
default_route = "ledger"
[keys]
lmk_file = "{lmk}"
[[listeners]]
name = "pos"
host = "127.0.0.1"
port = 0
dialect = "ifsf"
terminal_group = "site"
[[terminal_groups]]
name = "site"
terminals = ["T0000001"]
mac_required = false
[[acquirers]]
name = "ledger"
kind = "ledger"
"""


@pytest.fixture
def config(tmp_path: Path) -> Path:
    data_dir, lmk = tmp_path / "data", tmp_path / "lmk.key"
    subprocess.run(
        [sys.executable, "-m", "forecourt.switch.cli", "keys", "init", "--data-dir",
         str(data_dir), "--lmk-file", str(lmk)],
        check=True, capture_output=True,
    )  # fmt: skip
    path = tmp_path / "forecourt.toml"
    path.write_text(CONFIG.format(data_dir=data_dir, lmk=lmk))
    return path


def accounts(
    config: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
    *args: str, pan: str | None = None, operator: str = "alice",
) -> tuple[int, str, str]:  # fmt: skip
    monkeypatch.setattr(sys, "stdin", io.StringIO(f"{pan}\n" if pan else ""))
    code = main(["accounts", args[0], "--config", str(config), "--operator", operator, *args[1:]])
    out, err = capsys.readouterr()
    assert PAN not in out + err
    return code, out, err


def test_an_account_from_creation_to_statement(
    config: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def ok(*args: str, pan: str | None = None, operator: str = "alice") -> str:
        code, out, err = accounts(config, capsys, monkeypatch, *args, pan=pan, operator=operator)
        assert code == 0, err
        return out

    ok("create", "ACME", "--kind", "fleet", "--name", "Acme Haulage")
    ok("add-card", "ACME", "--vehicle", "AB12CDE", "--products", "DIESEL,ADBLUE", pan=PAN)
    ok("top-up", "ACME", "150.00", "--note", "opening")
    ok("adjust", "ACME", "-12.50", "--note", "fuel price correction", operator="bob")
    ok("limits", "--level", "signature", "--daily-amount", "50", "--daily-volume", "80", pan=PAN)
    ok("block", pan=PAN)
    ok("unblock", pan=PAN)
    assert "137.50" in ok("balances", "ACME")
    cards = ok("cards", "ACME")
    assert "707700******7890" in cards and "DIESEL,ADBLUE" in cards and "active" in cards
    statement = ok("statement", "ACME", "--since", "2000-01-01")
    assert "topup" in statement and "adjustment" in statement and "150.00" in statement
    audit = ok("audit")
    for action in ("create-account", "add-card", "topup", "adjustment", "set-limits",
                   "card-blocked", "card-active"):  # fmt: skip
        assert action in audit
    assert "alice" in audit and "bob" in audit


@pytest.mark.parametrize(
    ("args", "pan", "says"),
    [
        (("top-up", "NOPE", "10.00"), None, "unknown account 'NOPE'"),
        (("top-up", "ACME", "-10.00"), None, "must be positive"),
        (("top-up", "ACME", "ten"), None, "is not a number"),
        (("top-up", "ACME", "1.005"), None, "more than two decimals"),
        (("adjust", "ACME", "-999.00", "--note", "x"), None, "less than 99900 available"),
        (("add-card", "NOPE", "--driver", "D1"), PAN, "unknown account 'NOPE'"),
        (("add-card", "ACME"), "7077009999999999", "bind the card to a vehicle or a driver"),
        (("add-card", "ACME", "--driver", "D1"), "12ab", "must be 12 to 19 digits"),
        (("block",), "7077009999999999", "unknown card"),
        (("create", "ACME", "--kind", "fleet"), None, "exists already"),
        (("statement", "NOPE"), None, "unknown account 'NOPE'"),
        (("statement", "ACME", "--since", "yesterday"), None, "not an ISO 8601 date"),
    ],
)
def test_mistakes_are_one_line_and_exit_2(
    config: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    args: tuple[str, ...],
    pan: str | None,
    says: str,
) -> None:
    assert accounts(config, capsys, monkeypatch, "create", "ACME", "--kind", "fleet")[0] == 0
    code, _, err = accounts(config, capsys, monkeypatch, *args, pan=pan)
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and says in err, err
    assert "Traceback" not in err


def test_a_blocked_card_twice_and_a_lost_card_for_good(
    config: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    run = accounts
    assert run(config, capsys, monkeypatch, "create", "C", "--kind", "consumer")[0] == 0
    assert run(config, capsys, monkeypatch, "add-card", "C", pan=PAN)[0] == 0
    assert run(config, capsys, monkeypatch, "block", pan=PAN)[0] == 0
    code, _, err = run(config, capsys, monkeypatch, "block", pan=PAN)
    assert code == 2 and "707700******7890 is blocked already" in err
    assert run(config, capsys, monkeypatch, "lost", pan=PAN)[0] == 0
    code, _, err = run(config, capsys, monkeypatch, "unblock", pan=PAN)
    assert code == 2 and "is lost: a lost card is never reactivated" in err
    code, _, err = run(config, capsys, monkeypatch, "add-card", "C", "--vehicle", "X", pan=PAN)
    assert code == 2 and "consumer account" in err
