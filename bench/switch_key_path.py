"""The switch's key work per transaction: the clear keyrings of before, and the
security module of now (software backend), measured side by side in one process.

Per approved PIN purchase the switch verifies the terminal's MAC, MACs the
request to the acquirer, verifies the acquirer's answer, MACs the answer to the
terminal and translates field 52. Both paths run the same keys from a real key
store (keyrings of `KeyStore.mac_keyring`, TPK/ZPK), in alternating rounds so
the machine's load falls on both alike; best round of each. Prints one JSON
object: µs per operation and per transaction, each way, and the difference.

    .venv/bin/python bench/switch_key_path.py --rounds 7 --number 2000
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import trio
from forecourt.keys.exchange import install_key_change
from forecourt.keys.lmk import Lmk
from forecourt.keys.model import KeyType
from forecourt.keys.pin import SoftwarePinTranslator, encrypt_pin_block
from forecourt.keys.security_module import PinBlockFormat
from forecourt.keys.software_module import SoftwareModule
from forecourt.keys.store import KeyStore

PAN = "4761739001010010"


async def _timed(fn: Callable[[], Awaitable[object]], number: int) -> float:
    start = time.perf_counter()
    for _ in range(number):
        await fn()
    return (time.perf_counter() - start) / number * 1e6


async def _measure(rounds: int, number: int) -> dict[str, object]:
    data = os.urandom(180)  # about a purchase's MAC input
    with tempfile.TemporaryDirectory(prefix="fc-keypath-") as tmp:
        lmk = Lmk.generate()
        store = KeyStore.init(Path(tmp), lmk=lmk)
        ceremony = store.add_terminal("T1")
        store.add_acquirer("bank", (os.urandom(16), os.urandom(16)))
        tak = install_key_change(ceremony.clear_kek, ceremony.payload).mac_key()
        tpk = install_key_change(ceremony.clear_kek, ceremony.payload).get(KeyType.TPK)
        tak_ring, zak_ring = store.mac_keyring("T1"), store.mac_keyring("bank")
        tpk_key, zpk_key = store.pin_key("T1"), store.pin_key("bank")
        tpk_ref, zpk_ref = store.pin_ref("T1"), store.pin_ref("bank")
        store.close()
    assert tpk_key and zpk_key and tpk_ref and zpk_ref
    module = SoftwareModule(lmk)
    translator = SoftwarePinTranslator()
    mac = tak.generate(data)
    zak_mac = zak_ring.generate(data)
    block = encrypt_pin_block(tpk.key, tpk.algorithm, "1234", PAN)
    fmt = PinBlockFormat.ISO0

    async def before() -> None:  # the switch on main: sync keyrings, PinKeys, translator
        assert tak_ring.check(data, mac).ok
        zak_ring.generate(data)
        assert zak_ring.verify(data, zak_mac).value == "ok"
        tak_ring.generate(data)
        translator.translate(block, PAN, tpk_key, zpk_key)
        await trio.lowlevel.checkpoint()

    async def after() -> None:  # now: every operation awaited in the module
        assert (await tak_ring.check_in(module, data, mac)).ok
        await zak_ring.generate_in(module, data)
        assert (await zak_ring.check_in(module, data, zak_mac)).ok
        await tak_ring.generate_in(module, data)
        await module.translate_pin(tpk_ref, zpk_ref, block, PAN, fmt, fmt)
        await trio.lowlevel.checkpoint()

    await after()  # the module's caches warm, as after the first transaction
    best = {"before": float("inf"), "after": float("inf")}
    for _ in range(rounds):
        for name, fn in (("before", before), ("after", after)):
            best[name] = min(best[name], await _timed(fn, number))
    return {
        "benchmark": "switch_key_path",
        "rounds": rounds,
        "number": number,
        "us_per_transaction": {k: round(v, 2) for k, v in best.items()},
        "after_minus_before_us": round(best["after"] - best["before"], 2),
        "load_average": os.getloadavg(),
        "python": sys.version.split()[0],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7, help="alternating before/after rounds")
    parser.add_argument("--number", type=int, default=2000, help="transactions per round")
    args = parser.parse_args()
    print(json.dumps(trio.run(_measure, args.rounds, args.number)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
