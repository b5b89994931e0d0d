"""The HSM simulator in a test: started on 127.0.0.1 in the test's nursery, with keys
loaded the way key custodians load them (a ZMK formed from components at the
console, working keys imported under it with A6), so a test knows the clear keys
from the simulator's side and the switch side never sees them."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import attrs
import trio
from forecourt.keys import tr31
from forecourt.keys.crypto import Algorithm, generate_key, kcv
from forecourt.keys.lmk import Lmk
from forecourt.keys.model import KeyType
from forecourt.keys.payshield_module import PayShieldModule, PayShieldSettings
from forecourt.keys.payshield_pool import Connect, open_tcp
from forecourt.keys.security_module import KeyRef
from forecourt.simulators.hsm import HsmSimConfig, HsmSimulator
from forecourt.simulators.hsm_keys import form_key


@attrs.frozen
class Rig:
    sim: HsmSimulator
    port: int
    lmk: Lmk


@asynccontextmanager
async def running_sim(
    nursery: trio.Nursery, lmk: Lmk | None = None, **config: object
) -> AsyncIterator[Rig]:
    lmk = lmk or Lmk.generate()
    config.setdefault("port", 0)
    sim = HsmSimulator(HsmSimConfig(lmk=lmk, log_commands=False, **config))  # type: ignore[arg-type]
    scope = trio.CancelScope()

    async def serve(task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        with scope:
            await sim.run(task_status=task_status)

    port = await nursery.start(serve)
    try:
        yield Rig(sim, port, lmk)
    finally:
        scope.cancel()


def module_for(port: int, connect: Connect = open_tcp, **settings: object) -> PayShieldModule:
    return PayShieldModule(PayShieldSettings(port=port, **settings), connect)  # type: ignore[arg-type]


def console_zmk(lmk: Lmk, algorithm: Algorithm = Algorithm.TDES2) -> tuple[bytes, KeyRef]:
    """(the clear ZMK, its reference) after two custodians formed it at the console."""
    one, two = generate_key(algorithm), generate_key(algorithm)
    clear = bytes(a ^ b for a, b in zip(one, two, strict=True))
    block = form_key(lmk, [one, two], "K0", algorithm)
    return clear, KeyRef(KeyType.ZMK, algorithm, kcv(clear, algorithm), block, "payshield")


async def import_clear(
    module: PayShieldModule,
    zmk: tuple[bytes, KeyRef],
    key: bytes,
    key_type: KeyType,
    algorithm: Algorithm,
) -> KeyRef:
    """`key` sent to the HSM under the ZMK (a TR-31 block, as a bank sends it) and
    imported with A6."""
    clear_zmk, zmk_ref = zmk
    cryptogram = tr31.wrap(clear_zmk, zmk_ref.algorithm, key, key_type, algorithm, "E")
    return await module.import_key(zmk_ref, cryptogram, key_type, algorithm)


def fresh(algorithm: Algorithm) -> bytes:
    return generate_key(algorithm) if not algorithm.is_aes else os.urandom(algorithm.key_length)
