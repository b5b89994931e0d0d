"""`forecourt sim hsm` on 127.0.0.1 in a thread of its own, for tests of code that is
synchronous (the key store, the keys CLI): its trio loop runs beside the test's.
The simulator's LMK is in a data directory, as `forecourt sim hsm --data-dir` keeps
it, so `forecourt sim hsm form-key --data-dir` forms keys under the same LMK."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import attrs
import trio
from forecourt.keys.lmk import Lmk
from forecourt.keys.payshield_module import PayShieldSettings
from forecourt.simulators.hsm import HsmSimConfig, HsmSimulator
from forecourt.simulators.hsm_keys import load_or_create_lmk


@attrs.frozen
class ThreadedHsm:
    sim: HsmSimulator
    port: int
    lmk: Lmk
    data_dir: Path

    @property
    def settings(self) -> PayShieldSettings:
        return PayShieldSettings(port=self.port, timeout_s=5.0)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


@contextmanager
def hsm_in_thread(data_dir: Path) -> Iterator[ThreadedHsm]:
    lmk = load_or_create_lmk(data_dir)
    sim = HsmSimulator(HsmSimConfig(lmk=lmk, port=0, log_commands=False))
    started = threading.Event()
    found: dict[str, object] = {}

    async def main() -> None:
        found["token"] = trio.lowlevel.current_trio_token()
        async with trio.open_nursery() as nursery:
            found["port"] = await nursery.start(sim.run)
            found["cancel"] = nursery.cancel_scope.cancel
            started.set()

    thread = threading.Thread(target=trio.run, args=(main,), daemon=True)
    thread.start()
    assert started.wait(10), "the HSM simulator did not start"
    try:
        yield ThreadedHsm(sim, int(found["port"]), lmk, data_dir)  # type: ignore[call-overload]
    finally:
        token = found["token"]
        token.run_sync_soon(found["cancel"])  # type: ignore[attr-defined]
        thread.join(10)
