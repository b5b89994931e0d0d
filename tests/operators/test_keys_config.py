"""`forecourt keys --config FILE` opens the store `serve --config FILE` opens, and
`keys export-test-keys` gives a test host the link's keys as an explicit, audited
ceremony (a 0600 file, never over another, never on the terminal)."""

from __future__ import annotations

import os
import stat
import tomllib
from pathlib import Path

import pytest
from forecourt.keys.crypto import Algorithm, kcv
from forecourt.keys.store_location import read_store_location
from forecourt.simulators.acquirer import load_acquirer_config
from forecourt.switch.config import load_config

from tests.operators.cli_runs import REPO, forecourt, one_line_failure, shipped_config

CONFIGS = sorted([REPO / "conf" / "forecourt.toml", *(REPO / "conf" / "examples").glob("*.toml")])


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_keys_read_the_store_location_as_serve_does(path: Path) -> None:
    switch = load_config(path)
    keys = read_store_location(path)
    assert keys.data_dir == switch.data_dir
    assert keys.database == switch.database
    assert keys.lmk_file == switch.keys.lmk_file
    assert keys.allow_lmk_in_data_dir == switch.keys.allow_lmk_in_data_dir


def test_export_test_keys_for_the_simulator(tmp_path: Path) -> None:
    config = shipped_config(tmp_path)
    lmk = tmp_path / "etc" / "lmk.key"
    lmk.parent.mkdir()
    assert forecourt("keys", "init", "--config", config, "--lmk-file", lmk).returncode == 0
    zmk = REPO / "conf" / "sim" / "test-zmk"
    added = forecourt(
        "keys", "add-acquirer", "bank", "--config", config,
        "--component-file", zmk / "component-1.txt", "--component-file", zmk / "component-2.txt",
        "--component-kcv", "08D7B4", "--component-kcv", "D9C2A9", "--kcv", "6BC0F2",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert (tmp_path / "data" / "keys.db").exists()  # config's data_dir, not ./data

    out = tmp_path / "bank-test-keys.toml"
    result = forecourt("keys", "export-test-keys", "bank", "--config", config, "--to", out)
    assert result.returncode == 0, result.stderr
    assert "for a test host or simulator only" in result.stderr
    assert "key ceremony" in result.stderr
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    keys = tomllib.loads(out.read_text(encoding="ascii"))
    zak, zpk = bytes.fromhex(keys["mac"]["zak"]), bytes.fromhex(keys["pin"]["zpk"])
    assert zak.hex().upper() not in result.stdout + result.stderr  # only the file holds it

    listed = forecourt("keys", "list", "--config", config, "--owner", "bank").stdout
    for key in (zak, zpk):
        assert kcv(key, Algorithm.TDES2) in listed and kcv(key, Algorithm.TDES2) in result.stdout
    audit = forecourt("keys", "audit", "--config", config, "--owner", "bank").stdout
    assert audit.count("export_clear") == 2

    simulator = load_acquirer_config(REPO / "conf" / "sim" / "acquirer.toml", out)
    assert simulator.zak is not None and simulator.zpk is not None
    assert simulator.zpk.kcv == kcv(zpk, Algorithm.TDES2)

    again = forecourt("keys", "export-test-keys", "bank", "--config", config, "--to", out)
    assert "already exists" in one_line_failure(again)
