"""After a demo-like run (the switch, the acquirer simulator and the wallet simulator,
certification scripts through them), the files the simulators write import and
match the journal clean, and the ledger matches the journal too."""

from __future__ import annotations

import datetime as dt
import shutil
import time
import tomllib
from pathlib import Path

import pytest
import trio
from forecourt.switch.business_day import business_day_of, day_bounds
from forecourt.switch.config import SwitchConfig, parse_config
from forecourt.switch.demo import ACQUIRER, run_demo
from forecourt.switch.demo_ledger import LEDGER
from forecourt.switch.demo_wallet import WALLET
from forecourt.switch.journal import open_journal
from forecourt.switch.recon import ImportFile, MatchDay, RunResult
from forecourt.switch.recon.parse import file_sha256
from forecourt.switch.recon.reads import items
from rich.console import Console

REPO = Path(__file__).resolve().parents[2]

PARTIES = f"""
node = "n1"
data_dir = "{{data_dir}}"
[[acquirers]]
name = "{ACQUIRER}"
host = "127.0.0.1"
port = 9
[[acquirers]]
name = "{WALLET}"
kind = "ledger"
[[acquirers]]
name = "{LEDGER}"
kind = "ledger"
[[recon.parties]]
name = "bank"
kind = "acquirer"
settles = "{ACQUIRER}"
[recon.parties.columns]
reference = "rrn"
amount = "amount"
currency = "currency"
datetime = "settled_at"
type = "type"
pan = "pan"
[[recon.parties]]
name = "wallet"
kind = "wallet"
settles = "{WALLET}"
match_on = "order_no"
[recon.parties.columns]
reference = "refund_no|order_no"
amount = "amount"
currency = "currency"
datetime = "settled_at"
type = "kind"
datetime_format = "%Y-%m-%dT%H:%M:%SZ"
[recon.parties.columns.types]
sale = ["PAY"]
refund = ["REFUND"]
reversal = ["REVERSAL"]
[[recon.parties]]
name = "ledger"
kind = "ledger"
settles = "{LEDGER}"
"""


def _config(data_dir: Path) -> SwitchConfig:
    # the acquirer kinds only name the links here: reconciliation reads no link
    return parse_config(tomllib.loads(PARTIES.format(data_dir=data_dir)), base_dir=data_dir)


@pytest.mark.slow
def test_the_simulators_files_match_the_journal_clean(tmp_path: Path) -> None:
    certs = tmp_path / "cert"
    certs.mkdir()
    for name in ("01-ifsf-indoor.toml", "05-ledger.toml", "08-wallet.toml"):
        shutil.copy(REPO / "conf" / "cert" / name, certs / name)
    data = tmp_path / "data"
    data.mkdir()
    demo = trio.run(run_demo, data, certs, 0.0, Console(quiet=True))
    assert demo.passed
    cfg = _config(data)
    today = business_day_of(time.time(), cfg.business_day.cutover)
    settlement = data / "acquirer-settlement.csv"
    bill = data / f"wallet-bill-{dt.datetime.now(dt.UTC):%Y%m%d}.csv"

    async def main() -> dict[str, RunResult]:
        start, end = day_bounds(today, cfg.business_day.cutover)
        runs = {}
        async with open_journal(cfg) as journal:
            for party, path in (("bank", settlement), ("wallet", bill), ("ledger", None)):
                p = cfg.recon.party(party)
                assert p is not None
                if path is not None:
                    await journal.write(ImportFile(p, path, file_sha256(path), time.time()))
                [run] = await journal.write(MatchDay(p, today.isoformat(), start, end, time.time()))
                assert isinstance(run, RunResult)
                runs[party] = run
                open_items = await items(journal, party)
                assert open_items == [], [(i.match_class, i.reference) for i in open_items]
        return runs

    runs = trio.run(main)
    for party, run in runs.items():
        differences = {c: n for c, n in run.counts.items() if c != "matched" and n}
        assert differences == {}, (party, run.counts)
        assert run.counts["matched"] > 0, party
