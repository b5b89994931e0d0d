"""MAC keys for load runs: one clear test key for every terminal, a file of them, or
the key store.

- `{"mode": "key", "key": HEX, "algorithm": "retail"|"cmac"}`: every terminal
  MACs with the same clear key; meant for runs straight at the acquirer
  simulator (its ZAK) in tests and benchmarks.
- `{"mode": "keys", "file": PATH, "algorithm": "retail"|"cmac"}`: each terminal
  MACs with its own clear TAK from a JSON file `{terminal id: hex}`, for a key
  store that never gives clear keys (payshield): whoever provisioned the
  terminals wrote it from the key changes under their KEKs (benchmarks only).
- `{"mode": "store", "data_dir": DIR, "lmk_file": FILE|None, "provision": bool,
  "family": "tdes"|"aes", "allow_lmk_in_data_dir": bool}`: each terminal MACs
  with its current TAK from the switch's key store (the same data directory and
  LMK the switch uses; an LMK inside DIR only when allowed, as in the demo);
  `provision` registers terminals that are not there yet.

The spec is plain data so a worker process can rebuild the keys itself.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from forecourt.keys.errors import KeysError
from forecourt.keys.mac import MacAlgorithm, prepare_mac

__all__ = ["LoadKeyError", "macs_for"]


class LoadKeyError(Exception):
    """The load run's keys cannot be prepared (message names the cause, never a key)."""


def macs_for(
    spec: Mapping[str, Any], terminal_ids: Sequence[str]
) -> dict[str, Callable[[bytes], bytes]]:
    """Terminal id -> MAC function, per the spec."""
    mode = spec.get("mode")
    try:
        if mode == "key":
            mac = prepare_mac(
                bytes.fromhex(spec["key"]), MacAlgorithm(spec.get("algorithm", "retail"))
            )
            return dict.fromkeys(terminal_ids, mac.generate)
        if mode == "keys":
            return _from_file(spec, terminal_ids)
        if mode == "store":
            return _from_store(spec, terminal_ids)
    except (KeysError, ValueError, OSError) as exc:
        raise LoadKeyError(str(exc)) from None
    raise LoadKeyError(f"unknown MAC mode {mode!r}")


def _from_file(
    spec: Mapping[str, Any], terminal_ids: Sequence[str]
) -> dict[str, Callable[[bytes], bytes]]:
    keys = json.loads(Path(spec["file"]).read_text())
    algorithm = MacAlgorithm(spec.get("algorithm", "retail"))
    missing = [t for t in terminal_ids if t not in keys]
    if missing:
        raise LoadKeyError(f"terminal {missing[0]} has no key in {spec['file']}")
    return {t: prepare_mac(bytes.fromhex(keys[t]), algorithm).generate for t in terminal_ids}


def _from_store(
    spec: Mapping[str, Any], terminal_ids: Sequence[str]
) -> dict[str, Callable[[bytes], bytes]]:
    from forecourt.keys.store import KeyStore

    store = KeyStore.open(
        spec["data_dir"],
        dsn=spec.get("dsn"),
        lmk_file=spec.get("lmk_file"),
        allow_lmk_in_data_dir=bool(spec.get("allow_lmk_in_data_dir")),
    )
    try:
        out: dict[str, Callable[[bytes], bytes]] = {}
        for terminal_id in terminal_ids:
            if not store.is_registered(terminal_id):
                if not spec.get("provision"):
                    raise LoadKeyError(
                        f"terminal {terminal_id} is not registered (use --provision)"
                    )
                store.add_terminal(terminal_id, spec.get("family", "tdes"), actor="sim-load")
            current = store.mac_keyring(terminal_id).current
            if current is None:
                raise LoadKeyError(f"terminal {terminal_id} has no active TAK")
            out[terminal_id] = current.generate
        return out
    finally:
        store.close()
