"""`forecourt demo --backend payshield`: the certification scripts against a switch
whose keys are all in `forecourt sim hsm` (master keys formed at its console by
the demo playing the custodians, working keys made in it); what the backend
cannot run (AES DUKPT) is skipped with its reason and never counted as passed."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio
from forecourt.keys.backend import SqliteBackend
from forecourt.keys.errors import KeysError
from forecourt.keys.key_rows import select_all
from forecourt.keys.lmk import default_lmk_path, load_lmk
from forecourt.keys.tr31 import unwrap_any
from forecourt.simulators.hsm_keys import load_or_create_lmk, open_block
from forecourt.switch.demo import CONF, run_demo
from forecourt.switch.demo_payshield import SKIPPED_SCRIPTS
from rich.console import Console


@pytest.mark.slow
def test_the_certification_passes_on_the_hsm(tmp_path: Path) -> None:
    result = trio.run(run_demo, tmp_path, CONF / "cert", 0.0, Console(quiet=True), "payshield")
    failed = [
        (s, c.name, c.reason) for s, cases in result.results.items() for c in cases if not c.passed
    ]
    assert failed == []
    assert result.passed
    assert result.skipped == {"14-dukpt.toml": SKIPPED_SCRIPTS["14-dukpt.toml"]}
    assert not any("dukpt" in name for name in result.results)  # skipped: not run, not passed
    assert sum(len(c) for c in result.results.values()) > 50
    # every key the switch used is a block of the HSM's, none the software LMK opens
    hsm_lmk = load_or_create_lmk(tmp_path / "hsm")
    lmk = load_lmk(default_lmk_path(tmp_path), data_dir=tmp_path, allow_in_data_dir=True)
    db = SqliteBackend(tmp_path / "keys.db", create=False)
    try:
        with db.read() as tx:
            rows = [r for r in select_all(tx) if not r.erased]
    finally:
        db.close()
    assert len(rows) > 40
    for r in rows:
        open_block(hsm_lmk.key, r.key_block)
        with pytest.raises(KeysError):
            unwrap_any(lmk.key, r.key_block.removeprefix("S"), r.key_type)
