"""The pass-through rig on the payshield backend: `forecourt sim hsm` in its own
process (an HSM is its own box), the key store made for it, and the keys formed
at its console with the demo's own functions (switch/demo_payshield.py).

A payshield store never gives a clear key, so the other parties take theirs as a
terminal and a host do: from the key change under the KEK or the ZMK that the
registration returns. The load terminals' TAKs go to a JSON file for
`forecourt sim load --mac keys`; the link's ZAK to the acquirer simulator.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

import _harness as h
from forecourt.keys.crypto import adjust_parity, xor
from forecourt.keys.exchange import install_key_change
from forecourt.keys.lmk import default_lmk_path, load_lmk
from forecourt.keys.model import KeyType
from forecourt.simulators.hsm_keys import load_or_create_lmk
from forecourt.switch.demo_payshield import (
    DemoHsm,
    init_demo_store,
    open_demo_store,
    register_acquirer,
    register_terminal,
)

TERMINAL_KEK_1 = bytes.fromhex("0123456789ABCDEF0123456789ABCDEF")
TERMINAL_KEK_2 = bytes.fromhex("FEDCBA9876543210FEDCBA9876543210")


def start_hsm(work: Path) -> tuple[h.Proc, DemoHsm]:
    """The simulator process on a free port; returns it and its `DemoHsm` (LMK, port).

    The LMK file is made here first so this process can form keys at the console."""
    folder = work / "hsm"
    lmk = load_or_create_lmk(folder)
    port = h.free_port()
    command = [*h.FORECOURT, "sim", "hsm", "--data-dir", str(folder), "--port", str(port)]
    proc = h.Proc("hsm", [*command, "--quiet"], work / "hsm.log")
    try:
        h.wait_port(port)
    except RuntimeError:
        proc.stop()
        raise
    return proc, DemoHsm(lmk, port)


def prepare_keys(data_dir: Path, hsm: DemoHsm, terminals: Sequence[str], keys_file: Path) -> bytes:
    """Register the terminals and the link `bank` in the HSM; write the terminals'
    clear TAKs to `keys_file` and return the link's clear ZAK."""
    init_demo_store(data_dir, hsm)
    lmk = load_lmk(default_lmk_path(data_dir), data_dir=data_dir, allow_in_data_dir=True)
    store = open_demo_store(data_dir, lmk, hsm)
    kek = adjust_parity(xor(TERMINAL_KEK_1, TERMINAL_KEK_2))
    taks: dict[str, str] = {}
    try:
        for terminal_id in terminals:
            payload = register_terminal(store, hsm, terminal_id, (TERMINAL_KEK_1, TERMINAL_KEK_2))
            taks[terminal_id] = install_key_change(kek, payload).get(KeyType.TAK).key.hex()
        link = register_acquirer(store, hsm, "bank", (h.TEST_ZMK_1, h.TEST_ZMK_2))
    finally:
        store.close()
    keys_file.write_text(json.dumps(taks))
    keys_file.chmod(0o600)
    zmk = adjust_parity(xor(h.TEST_ZMK_1, h.TEST_ZMK_2))
    return install_key_change(zmk, link).get(KeyType.ZAK).key


def keys_toml(hsm: DemoHsm) -> str:
    """The switch's `[keys]` on the simulator (the store's LMK sits in its data dir)."""
    return (
        '[keys]\nallow_lmk_in_data_dir = true\nbackend = "payshield"\n'
        f'[keys.payshield]\nhost = "127.0.0.1"\nport = {hsm.port}\n'
    )


def command_counts(log: Path) -> dict[str, int]:
    """The simulator's own count by command, from the line it writes when it stops."""
    match = re.search(r"HSM simulator stopped: \d+ commands \(([^)]*)\)", log.read_text())
    if match is None or match.group(1) == "none":
        return {}
    return {k: int(v) for k, v in (item.split(": ") for item in match.group(1).split(", "))}
