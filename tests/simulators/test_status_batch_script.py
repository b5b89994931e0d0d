"""conf/cert/10-status-batch.toml through `forecourt demo` alone, then what the real
acquirer simulator recorded: the status queries and trailers never reached it, and
each advice of the twice re-uploaded batch reached it once."""

from __future__ import annotations

import contextlib
import json
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_status_batch_script_passes_and_only_advices_reach_the_acquirer(tmp_path: Path) -> None:
    cert = tmp_path / "cert"
    cert.mkdir()
    shutil.copy(REPO / "conf" / "cert" / "10-status-batch.toml", cert)
    data = tmp_path / "d"
    demo = ["demo", "--data-dir", str(data), "--cert", str(cert), "--load-seconds", "0"]
    result = subprocess.run(
        [sys.executable, "-m", "forecourt.switch.cli", *demo],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "certification: 6/6 cases passed" in result.stdout
    lines = (data / "acquirer-received.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    mine = [r for r in records if r["terminal_id"] == "T0000010"]
    assert sorted((r["mti"], r["amount"]) for r in mine) == [
        ("1200", "000000003150"),  # the purchase whose answer was lost
        ("1220", "000000001000"),
        ("1220", "000000002000"),
        ("1220", "000000003000"),
    ]
    assert not [r for r in records if r["mti"][:2] == "16"]
    with contextlib.closing(sqlite3.connect(data / "journal.db")) as db:
        queries = db.execute("SELECT answered FROM status_queries ORDER BY id").fetchall()
        batch = db.execute("SELECT trailers, switch_count, in_balance FROM batches").fetchall()
    assert queries == [("A",), ("U",)]
    assert batch == [(3, 3, 1)]
