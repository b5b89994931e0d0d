"""`forecourt params` as an operator runs it (a subprocess): publish, list, show, diff;
a malformed file refused with one line naming the key and the fix, nothing stored."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from forecourt.switch.cli import main

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "conf" / "demo"


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "forecourt.toml"
    path.write_text(f'node = "cli"\ndata_dir = "{tmp_path / "data"}"\n')
    return path


def params(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "forecourt.switch.cli", "params", args[0], *args[1:],
         "--config", str(config)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def in_process(
    config: Path, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, str, str]:
    code = main(["params", *args, "--config", str(config)])
    out, err = capsys.readouterr()
    return code, out, err


def test_publish_list_show_diff(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """One subprocess per command (what an operator runs), the rest in-process."""
    first = params(config, "publish", str(DEMO / "params-1.toml"), "--operator", "alice")
    assert first.returncode == 0, first.stderr
    assert "published version 1" in first.stdout
    code, out, _ = in_process(config, capsys, "publish", str(DEMO / "params-2.toml"))
    assert code == 0 and "published version 2: 5 records changed" in out
    code, _, err = in_process(config, capsys, "publish", str(DEMO / "params-2.toml"))
    assert code == 2
    assert err.strip().endswith("the same set as version 2; nothing published")

    listed = params(config, "list").stdout
    rows = [line for line in listed.splitlines() if "│" in line and "prices" in line]
    assert len(rows) == 2 and "alice" in rows[0] and "December prices" in rows[1]

    shown = params(config, "show", "1", "--kind", "products").stdout
    assert "Car wash" in shown and "1.659" in shown and "Autogas" not in shown
    _, shown_2, _ = in_process(config, capsys, "show", "2")
    assert "Autogas LPG" in shown_2 and "Car wash" not in shown_2
    assert "476173******0010" not in shown_2  # cleared from the grey list in version 2

    diff = params(config, "diff", "1", "2").stdout
    changes = [line.split("│")[1].strip() for line in diff.splitlines() if "│ " in line[:3]]
    assert sorted(changes) == ["added", "added", "changed", "deleted", "deleted"]
    code, _, err = in_process(config, capsys, "show", "9")
    assert code == 2 and "version 9 does not exist" in err


@pytest.mark.parametrize(
    ("body", "named"),
    [
        (
            '[products.95]\nname = "U95"\nunit = "L"\nunit_price = "1,659"\n',
            "products.95.unit_price",
        ),
        ('[products.95]\nname = "U95"\nunit = "M3"\nunit_price = "1.6"\n', "products.95.unit"),
        ('[bins.7077]\nproduct = "fleet"\nroute = "ledger"\noffline = true\n', "bins.7077.product"),
        ("[prices]\n", "prices"),
        ('[receipt]\nheader = "a;b"\n', "receipt.header"),
    ],
)
def test_a_malformed_file_is_refused_whole(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], body: str, named: str
) -> None:
    """In-process: the same `main` an operator runs, without a subprocess each."""
    path = tmp_path / "bad.toml"
    path.write_text('[products.DSL]\nname = "Diesel"\nunit = "L"\nunit_price = "1.5"\n' + body)
    assert main(["params", "publish", str(path), "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err  # one line, no traceback
    assert f"{path}: {named}:" in err
    assert main(["params", "list", "--config", str(config)]) == 0
    assert "no parameter version published yet" in capsys.readouterr().out


def test_a_full_pan_in_the_block_list_is_refused_and_nothing_stored(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pan = "7077001234567890"
    path = tmp_path / "pan.toml"
    path.write_text(f'[block_list."{pan}"]\nreason = "lost"\n')
    code, out, err = in_process(config, capsys, "publish", str(path))
    assert code == 2
    assert "ending 7890" in err and "truncated" in err
    assert pan not in out + err
    assert "no parameter version published yet" in in_process(config, capsys, "list")[1]
