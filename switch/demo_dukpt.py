"""The demo's DUKPT PIN pad: a BDK, one AES DUKPT terminal and its listener.

The BDK is the X9.24-3-2017 supplement's AES-128 test BDK and the terminal's
initial key ID the supplement's, so conf/cert/14-dukpt.toml can hold the
initial key the ceremony would hand out (a test key, printed in the standard).
"""

from __future__ import annotations

import time
from typing import Any

from forecourt.keys import dukpt_aes
from forecourt.keys.crypto import Algorithm, kcv
from forecourt.keys.store import KeyStore
from forecourt.simulators.script import Script

DUKPT_TERMINAL = "P0000001"
DUKPT_LISTENER = "ifsf-dukpt"
_BDK_NAME = "demo-bdk"
_TEST_BDK = bytes.fromhex("FEDCBA9876543210F1F1F1F1F1F1F1F1")  # X9.24-3-2017 supplement
_INITIAL_KEY_ID = bytes.fromhex("1234567890123456")


def prepare_dukpt(store: KeyStore) -> None:
    """The BDK and the DUKPT terminal, once per data directory."""
    registry = store.dukpt()
    if _BDK_NAME not in {o.name for o in store.owners()}:
        registry.add_bdk(_BDK_NAME, Algorithm.AES128, _TEST_BDK, time.time(), "demo")
    if registry.terminal(DUKPT_TERMINAL) is None:
        initial = dukpt_aes.aes_initial_key(_TEST_BDK, _INITIAL_KEY_ID)
        check = kcv(initial, Algorithm.AES128)
        registry.add_terminal(
            DUKPT_TERMINAL, _BDK_NAME, _INITIAL_KEY_ID, check, time.time(), "demo"
        )


def add_dukpt_sections(doc: dict[str, Any]) -> None:
    """A DUKPT group of one PIN pad, on its own ifsf listener."""
    doc["listeners"].append(
        {
            "name": DUKPT_LISTENER,
            "host": "127.0.0.1",
            "port": 0,
            "dialect": "ifsf",
            "terminal_group": "dukpt",
        }
    )
    doc["terminal_groups"].append(
        {
            "name": "dukpt",
            "terminals": [DUKPT_TERMINAL],
            "mac_required": True,
            "max_in_flight": 4,
            "dukpt": "aes",
            "dukpt_bdk": _BDK_NAME,
            "ksn_field": "48.29",
        }
    )


def listener_for(script: Script) -> str | None:
    """The listener a DUKPT script's terminal talks to, else None."""
    return DUKPT_LISTENER if script.terminal.dukpt is not None else None
