"""What the switch makes of its security module's refusals (docs/hsm.md "Error codes").

Real key stores and real modules, no doubles: a software module under another LMK
than the store's (a module that cannot open the switch's key blocks, as a payShield
answers 10 for a block under another LMK), and `forecourt sim hsm` with a command
disabled (68).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import trio
from forecourt.codecs.message import Message
from forecourt.keys.exchange import install_key_change
from forecourt.keys.keyring import MacKey
from forecourt.keys.lmk import Lmk
from forecourt.keys.model import KeyType
from forecourt.keys.pin import encrypt_pin_block
from forecourt.keys.security_module import ModuleError
from forecourt.keys.sign_on import sign_on_mac
from forecourt.keys.software_module import SoftwareModule
from forecourt.keys.store import KeyStore
from forecourt.switch.terminal_keys import KeyringCache
from forecourt.switch.zone_pins import PinRefused

from tests.keys.payshield_rig import module_for, running_sim
from tests.switch.harness import TEST_PAN

DATA = b"a request's MAC input"


def _store(path: Path) -> tuple[KeyStore, bytes, MacKey, bytes]:
    """A store with terminal T1 and link bank; T1's KEK, TAK and clear TPK."""
    store = KeyStore.init(path, lmk=Lmk.generate())
    ceremony = store.add_terminal("T1")
    store.add_acquirer("bank", (os.urandom(16), os.urandom(16)))
    keys = install_key_change(ceremony.clear_kek, ceremony.payload)
    return store, ceremony.clear_kek, keys.mac_key(), keys.get(KeyType.TPK).key


async def test_keys_the_module_cannot_open_are_a_key_sync_matter(tmp_path: Path) -> None:
    store, kek, tak, _ = _store(tmp_path)
    with store:
        keys = KeyringCache(store, module=SoftwareModule(Lmk.generate()))  # another LMK
        assert await keys.verify("T1", DATA, tak.generate(DATA)) == "key_sync"  # 917
        proof = sign_on_mac(kek, "T1").generate(DATA)
        assert await keys.verify_sign_on("T1", DATA, proof) == "key_sync"
        # the same keys under the store's own LMK verify: it was the module's refusal
        own = KeyringCache(store)
        assert await own.verify("T1", DATA, tak.generate(DATA)) == "ok"


async def test_a_pin_the_module_refuses_is_refused_with_its_code(tmp_path: Path) -> None:
    store, _, _, tpk = _store(tmp_path)
    with store:
        keys = KeyringCache(store, module=SoftwareModule(Lmk.generate()))
        ref = store.pin_ref("T1")
        assert ref is not None
        block = encrypt_pin_block(tpk, ref.algorithm, "1234", TEST_PAN)  # a good block
        message = Message("1200", {"2": TEST_PAN, "41": "T1", "52": block.hex().upper()})
        with pytest.raises(PinRefused, match=r"refused the translation \(error software\)") as e:
            await keys.pin_upstream(message, "T1", "bank")
        assert not e.value.unavailable
        assert block.hex().upper() not in str(e.value)


async def test_a_refusal_other_than_the_keys_reaches_the_session_boundary(
    tmp_path: Path,
) -> None:
    """M8 disabled at the HSM (68): not a MAC failure and not a key problem; it goes
    up as the ModuleError the pipeline answers 909 / 96."""
    store, _, tak, _ = _store(tmp_path)
    disabled = frozenset({"M8"})
    with store:
        async with (
            trio.open_nursery() as nursery,
            running_sim(nursery, disabled=disabled) as rig,
            module_for(rig.port) as hsm,
        ):
            keys = KeyringCache(store, module=hsm)
            with pytest.raises(ModuleError) as e:
                await keys.verify("T1", DATA, tak.generate(DATA))
            assert e.value.code == "68"
