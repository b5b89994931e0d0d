"""`forecourt demo --backend payshield`: the demo's keys in `forecourt sim hsm`.

The simulator runs inside the demo's process tree (its LMK in the data
directory's `hsm/`, as a demo may keep it), the key store is made for the
payshield backend, and the demo plays the key custodians: each master key (the
certification terminals' test KEK and their sign-on keys, the acquirer link's
ZMK) is formed at the simulator's console from its components and registered as
the block the console printed; every working key is generated in the HSM.

What the payshield backend cannot do is skipped, with the reason printed and never
counted as passed: AES DUKPT (the payShield backend has no AES DUKPT commands:
docs/hsm.md), and the load run (its terminals' MAC keys come from the store in
the clear, which a payshield store never gives).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
import trio
from forecourt.keys.crypto import Algorithm, Family, adjust_parity, generate_key, kcv, xor
from forecourt.keys.lmk import Lmk
from forecourt.keys.payshield_module import PayShieldSettings
from forecourt.keys.sign_on import sign_on_key
from forecourt.keys.store import KeyStore
from forecourt.simulators.hsm import HsmSimConfig, HsmSimulator
from forecourt.simulators.hsm_keys import form_key, load_or_create_lmk

PAYSHIELD = "payshield"
SKIPPED_SCRIPTS = {
    "14-dukpt.toml": "AES DUKPT: the payshield backend has no AES DUKPT commands (docs/hsm.md)"
}
LOAD_SKIPPED = (
    "load run skipped: its terminals' MAC keys are read from the store in the clear,"
    " which a payshield store never gives"
)


@attrs.frozen
class DemoHsm:
    """The simulator the demo started, and how the store reaches it."""

    lmk: Lmk = attrs.field(repr=False)
    port: int

    @property
    def settings(self) -> PayShieldSettings:
        return PayShieldSettings(port=self.port, timeout_s=5.0)

    def keys_section(self) -> dict[str, Any]:
        return {"backend": PAYSHIELD, "payshield": {"host": "127.0.0.1", "port": self.port}}


async def start_hsm(nursery: trio.Nursery, data_dir: Path) -> DemoHsm:
    """`forecourt sim hsm` in `nursery`, on a free port, its LMK in DATA_DIR/hsm."""
    lmk = load_or_create_lmk(data_dir / "hsm")
    sim = HsmSimulator(HsmSimConfig(lmk=lmk, port=0, log_commands=False))
    port = await nursery.start(sim.run)
    return DemoHsm(lmk, port)


def _at_console(lmk: Lmk, key: bytes, usage: str, algorithm: Algorithm) -> str:
    """Two custodians form `key` at the console: a random component and its complement."""
    one = generate_key(algorithm)
    return form_key(lmk, [one, xor(key, one)], usage, algorithm)


def register_terminal(
    store: KeyStore, hsm: DemoHsm | None, terminal_id: str, components: tuple[bytes, bytes]
) -> str:
    """A certification terminal holding the KEK its components make: loaded from
    them (software), or formed at the console with its sign-on key (payshield).
    Returns the payload of its first working keys."""
    if hsm is None:
        return store.add_terminal(terminal_id, actor="demo", components=components).payload
    t2 = Algorithm.TDES2
    kek = adjust_parity(xor(*components))
    sign_on = sign_on_key(kek, terminal_id, t2)
    return store.add_terminal_blocks(
        terminal_id,
        Family.TDES,
        form_key(hsm.lmk, list(components), "K0", t2),
        kcv(kek, t2),
        _at_console(hsm.lmk, sign_on, "M3", t2),
        kcv(sign_on, t2),
        actor="demo",
    ).payload


def register_acquirer(
    store: KeyStore, hsm: DemoHsm | None, name: str, components: tuple[bytes, bytes]
) -> str:
    """The acquirer link's ZMK from its components (software) or formed at the console."""
    if hsm is None:
        return store.add_acquirer(name, components, actor="demo").payload
    zmk = adjust_parity(xor(*components))
    block = form_key(hsm.lmk, list(components), "K0", Algorithm.TDES2)
    return store.add_acquirer_blocks(
        name, Algorithm.TDES2, block, kcv(zmk, Algorithm.TDES2), actor="demo"
    ).payload


def open_demo_store(data_dir: Path, lmk: Lmk, hsm: DemoHsm | None) -> KeyStore:
    if hsm is None:
        return KeyStore.open(data_dir, lmk=lmk)
    return KeyStore.open(data_dir, lmk=lmk, module=PAYSHIELD, payshield=hsm.settings)


def init_demo_store(data_dir: Path, hsm: DemoHsm | None) -> None:
    if hsm is None:
        KeyStore.init(data_dir, allow_lmk_in_data_dir=True).close()
    else:
        KeyStore.init(
            data_dir, allow_lmk_in_data_dir=True, module=PAYSHIELD, payshield=hsm.settings
        ).close()
