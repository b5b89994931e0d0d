"""`forecourt recon resolve ITEM --action advice` as an operator runs it: a real
subprocess on a real journal and key store, the LMK in its own file. The advice is
queued and the item closed; a second advice of the same sale, an item with no
journal transaction and a switch without its LMK are each one line, exit 2. No
output holds the clear PAN."""

from __future__ import annotations

from pathlib import Path
from subprocess import CompletedProcess

import pytest
import trio
from forecourt.keys.lmk import Lmk
from forecourt.keys.store import KeyStore
from forecourt.switch.journal import open_journal
from forecourt.switch.server import saf_data_key

from tests.operators.cli_runs import forecourt, one_line_failure
from tests.recon import scenario
from tests.recon.test_advice import PAN, _items, _park

pytestmark = pytest.mark.slow


def test_advice_from_the_command_line(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    lmk = Lmk.generate()
    KeyStore.init(data, lmk=lmk).close()
    lmk.write(tmp_path / "lmk.key")
    text = scenario.CONFIG.format(data_dir=data, database="")
    config = tmp_path / "forecourt.toml"
    config.write_text(f'{text}\n[keys]\nlmk_file = "{tmp_path / "lmk.key"}"\n')
    no_lmk = tmp_path / "no-lmk.toml"
    no_lmk.write_text(text)
    cfg = scenario.config(data)

    async def seed() -> dict[tuple[str, str], int]:
        """The planted day matched for both parties (as `recon import` and `recon run`
        do: tests/recon/test_cli.py runs those), the sale's reversal parked."""
        async with open_journal(cfg, saf_key=saf_data_key(lmk)) as journal:
            by = await _items(journal, cfg, tmp_path)
            txn_id = by["bank", "000000000004"].txn_id
            assert txn_id is not None
            await _park(journal, txn_id, 4200, key=saf_data_key(lmk))
        return {ref: item.id for ref, item in by.items()}

    ids = trio.run(seed)
    lost, twin = ids["bank", "000000000004"], ids["bankfix", "000000000004"]
    nothing = ids["bank", "000000000005"]

    def resolve(item: int, who: str, conf: Path = config) -> CompletedProcess[str]:
        return forecourt(
            "recon", "resolve", str(item), "--config", conf, "--action", "advice",
            "--operator", who, "--reason", "the host lost it",
        )  # fmt: skip

    done = resolve(lost, "alice")
    assert done.returncode == 0, done.stderr
    assert f"item {lost}: advice 1220 of " in done.stdout
    assert "queued for bank; closed by alice" in done.stdout
    refused = [resolve(twin, "bob"), resolve(nothing, "bob"), resolve(twin, "bob", no_lmk)]
    again, nothing_line, no_key = (one_line_failure(r) for r in refused)
    assert f"item {twin}: an advice of" in again and "was sent already" in again
    assert f"item {nothing} names no journal transaction" in nothing_line
    assert "--action advice needs the switch's LMK" in no_key
    for result in (done, *refused):
        assert PAN not in result.stdout + result.stderr
