"""`sim load --mac keys`: each terminal MACs with its own TAK from a JSON file (the
way a benchmark hands over the keys a payshield store never gives in the clear)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from forecourt.keys.crypto import Algorithm, generate_key
from forecourt.keys.mac import retail_mac
from forecourt.simulators.loadkeys import LoadKeyError, macs_for

TERMINALS = ["L0000001", "L0000002", "L0000003"]


def test_each_terminal_macs_with_its_own_key(tmp_path: Path) -> None:
    keys = {t: generate_key(Algorithm.TDES2) for t in TERMINALS}
    file = tmp_path / "taks.json"
    file.write_text(json.dumps({t: k.hex() for t, k in keys.items()}))
    macs = macs_for({"mode": "keys", "file": str(file)}, TERMINALS)
    data = os.urandom(61)
    assert {t: macs[t](data) for t in TERMINALS} == {
        t: retail_mac(k, data) for t, k in keys.items()
    }


def test_a_terminal_without_a_key_is_named_and_no_key_is_shown(tmp_path: Path) -> None:
    key = generate_key(Algorithm.TDES2)
    file = tmp_path / "taks.json"
    file.write_text(json.dumps({TERMINALS[0]: key.hex()}))
    with pytest.raises(LoadKeyError, match="L0000002 has no key") as caught:
        macs_for({"mode": "keys", "file": str(file)}, TERMINALS)
    assert key.hex() not in str(caught.value).lower()


def test_an_unreadable_file_is_a_load_key_error(tmp_path: Path) -> None:
    with pytest.raises(LoadKeyError):
        macs_for({"mode": "keys", "file": str(tmp_path / "absent.json")}, TERMINALS)
