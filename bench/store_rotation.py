"""A key rotation's cost in the key store, software vault against the payshield vault.

Per terminal: `rotate` (three working keys made and wrapped under its KEK: on a
payshield store three A0 mode 1 commands to `forecourt sim hsm` over TCP) and
`mark_delivered`; also a reissue of the pending keys (`reuse_pending`: A8 each).
The simulator runs in a thread of this process (its own trio loop). Prints one
JSON object: ms per operation for each vault, best of the rounds.

    .venv/bin/python bench/store_rotation.py --terminals 50 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import trio
from forecourt.keys.crypto import Algorithm, Family, generate_key, kcv, xor
from forecourt.keys.lmk import Lmk
from forecourt.keys.payshield_module import PayShieldSettings
from forecourt.keys.sign_on import sign_on_key
from forecourt.keys.store import KeyStore
from forecourt.simulators.hsm import HsmSimConfig, HsmSimulator
from forecourt.simulators.hsm_keys import form_key


def _formed(lmk: Lmk, key: bytes, usage: str) -> str:
    one = generate_key(Algorithm.TDES2)
    return form_key(lmk, [one, xor(key, one)], usage, Algorithm.TDES2)


def _store(tmp: Path, terminals: list[str], hsm: tuple[Lmk, int] | None) -> KeyStore:
    if hsm is None:
        store = KeyStore.init(tmp, lmk=Lmk.generate())
        for t in terminals:
            store.add_terminal(t)
        return store
    lmk, port = hsm
    settings = PayShieldSettings(port=port, timeout_s=5.0)
    store = KeyStore.init(tmp, lmk=Lmk.generate(), module="payshield", payshield=settings)
    t2 = Algorithm.TDES2
    for t in terminals:
        kek = generate_key(t2)
        sign_on = sign_on_key(kek, t, t2)
        store.add_terminal_blocks(
            t, Family.TDES, _formed(lmk, kek, "K0"), kcv(kek, t2),
            _formed(lmk, sign_on, "M3"), kcv(sign_on, t2),
        )  # fmt: skip
    return store


def _per_call(fn: Callable[[str], object], terminals: list[str]) -> float:
    start = time.perf_counter()
    for t in terminals:
        fn(t)
    return (time.perf_counter() - start) / len(terminals) * 1e3


def _round(store: KeyStore, terminals: list[str]) -> dict[str, float]:
    changes = {}

    def rotate(t: str) -> None:
        changes[t] = store.rotate(t)

    out = {"rotate_ms": _per_call(rotate, terminals)}
    out["reissue_ms"] = _per_call(lambda t: store.rotate(t, reuse_pending=True), terminals)
    out["mark_delivered_ms"] = _per_call(lambda t: store.mark_delivered(changes[t]), terminals)
    return out


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--terminals", type=int, default=50, help="terminals rotated per round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; the best is reported")
    args = parser.parse_args(argv)
    lmk = Lmk.generate()
    sim = HsmSimulator(HsmSimConfig(lmk=lmk, port=0, log_commands=False))
    found: dict[str, object] = {}
    started = threading.Event()

    async def serve() -> None:
        found["token"] = trio.lowlevel.current_trio_token()
        async with trio.open_nursery() as nursery:
            found["port"] = await nursery.start(sim.run)
            found["cancel"] = nursery.cancel_scope.cancel
            started.set()

    thread = threading.Thread(target=trio.run, args=(serve,), daemon=True)
    thread.start()
    started.wait(10)
    terminals = [f"T{n:07d}" for n in range(args.terminals)]
    result: dict[str, object] = {"terminals": args.terminals, "rounds": args.rounds}
    for name, hsm in (("software", None), ("payshield", (lmk, int(found["port"])))):  # type: ignore[call-overload]
        with tempfile.TemporaryDirectory(prefix="fc-rotation-") as tmp:
            store = _store(Path(tmp), terminals, hsm)
            rounds = [_round(store, terminals) for _ in range(args.rounds)]
            store.close()
        result[name] = {k: round(min(r[k] for r in rounds), 3) for k in rounds[0]}
    result["hsm_commands"] = dict(sorted(sim.counts_by_command().items()))
    found["token"].run_sync_soon(found["cancel"])  # type: ignore[attr-defined]
    thread.join(10)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
