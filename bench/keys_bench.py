"""Key benchmarks: one JSON object on stdout.

µs per MAC generate / verify over a 256-byte message (retail MAC and AES-CMAC,
prepared keys; cryptography's own CMAC per call for comparison), µs per keyring
verify through the current key, and ms per rotation (rotate + deliver, SQLite).
The security module's and DUKPT's figures come from bench/module_bench.py.

`--backend payshield` instead: the same MACs (and a PIN translation) through the
payshield backend against `forecourt sim hsm` in its own process
(bench/_hsm_bench.py), and what the HSM round trips cost one transaction.
`--backend pkcs11`: the MACs through the pkcs11 backend on a SoftHSM2 token made
for the run, beside the software backend's (bench/_pkcs11_bench.py).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import timeit
from collections.abc import Callable
from pathlib import Path

import module_bench
from cryptography.hazmat.primitives.ciphers import algorithms
from cryptography.hazmat.primitives.cmac import CMAC
from forecourt.keys import (
    AesCmac,
    Algorithm,
    KeyStore,
    Lmk,
    RetailMac,
    generate_key,
    install_key_change,
)


def _us(fn: Callable[[], object], number: int) -> float:
    best = min(timeit.repeat(fn, number=number, repeat=5))
    return round(best / number * 1e6, 3)


def main() -> None:
    parser = argparse.ArgumentParser(description="key benchmarks (JSON on stdout)")
    parser.add_argument(
        "--backend",
        choices=("software", "payshield", "pkcs11"),
        default="software",
        help="(software)",
    )
    parser.add_argument(
        "--calls", type=int, default=1000, help="payshield, pkcs11: calls per figure"
    )
    args = parser.parse_args()
    data = os.urandom(256)
    if args.backend == "payshield":
        sys.path.insert(0, str(Path(__file__).parent))
        from _hsm_bench import payshield_figures

        print(json.dumps(payshield_figures(data, args.calls)))
        return
    if args.backend == "pkcs11":
        sys.path.insert(0, str(Path(__file__).parent))
        from _pkcs11_bench import pkcs11_figures

        print(json.dumps(pkcs11_figures(data, args.calls)))
        return
    retail = RetailMac(generate_key(Algorithm.TDES2))
    cmac_key = generate_key(Algorithm.AES128)
    cmac = AesCmac(cmac_key)
    r_mac = retail.generate(data)
    c_mac = cmac.generate(data)

    def cryptography_cmac() -> bytes:
        c = CMAC(algorithms.AES(cmac_key))
        c.update(data)
        return c.finalize()[:8]

    n = 20_000
    out: dict[str, object] = {
        "message_bytes": len(data),
        "retail_generate_us": _us(lambda: retail.generate(data), n),
        "retail_verify_us": _us(lambda: retail.verify(data, r_mac), n),
        "cmac_generate_us": _us(lambda: cmac.generate(data), n),
        "cmac_verify_us": _us(lambda: cmac.verify(data, c_mac), n),
        "cmac_cryptography_per_call_us": _us(cryptography_cmac, n),
    }
    with tempfile.TemporaryDirectory() as tmp:
        lmk = Lmk.generate()
        with KeyStore.init(Path(tmp), lmk=lmk) as store:
            c = store.add_terminal("T1")
            ring = store.mac_keyring("T1")
            term = install_key_change(c.clear_kek, c.payload).keyring("T1")
            mac = term.generate(data)
            out["keyring_verify_current_us"] = _us(lambda: ring.verify(data, mac), n)
            rounds = 50

            def rotate_and_deliver() -> None:
                store.mark_delivered(store.rotate("T1"))

            out["rotation_sqlite_ms"] = round(_us(rotate_and_deliver, rounds) / 1000, 3)
            out["rotate_only_sqlite_ms"] = round(
                _us(lambda: store.rotate("T1", activate=True), rounds) / 1000, 3
            )
            load = _us(lambda: store.mac_keyring("T1"), rounds)
            out["mac_keyring_load_ms"] = round(load / 1000, 3)
    out |= module_bench.figures(data)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
