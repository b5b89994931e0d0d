"""A key store made on a payment HSM for a switch test (`started_switch(prepared=...)`):
the terminals' KEKs, their sign-on keys and the link's ZMK formed at the simulator's
console, every working key generated in it (A0), and what the terminals and the
host hold (KEK, TAK, TPK, ZPK) taken from the payloads under the KEK/ZMK, as they
take them."""

from __future__ import annotations

from pathlib import Path

import attrs
from forecourt.keys.crypto import Algorithm, Family, adjust_parity, generate_key, kcv, xor
from forecourt.keys.exchange import ClearKey, install_key_change
from forecourt.keys.keyring import MacKey
from forecourt.keys.lmk import Lmk
from forecourt.keys.model import KeyType
from forecourt.keys.sign_on import sign_on_key
from forecourt.keys.store import KeyStore
from forecourt.simulators.hsm_keys import form_key

from tests.keys.hsm_thread import ThreadedHsm


@attrs.frozen
class PreparedKeys:
    store: KeyStore
    lmk: Lmk
    terminal_keys: dict[str, MacKey]
    keks: dict[str, bytes]
    tpks: dict[str, ClearKey]
    zpk: ClearKey | None


def console_formed(lmk: Lmk, key: bytes, usage: str, algorithm: Algorithm) -> str:
    """`key` as two custodians form it at the console (a random component and its complement)."""
    one = generate_key(algorithm)
    return form_key(lmk, [one, xor(key, one)], usage, algorithm)


def payshield_keys(
    data_dir: Path,
    hsm: ThreadedHsm,
    terminals: tuple[str, ...],
    zmk_components: tuple[bytes, bytes] | None = None,
) -> PreparedKeys:
    lmk = Lmk.generate()
    store = KeyStore.init(data_dir, lmk=lmk, module="payshield", payshield=hsm.settings)
    terminal_keys: dict[str, MacKey] = {}
    keks: dict[str, bytes] = {}
    tpks: dict[str, ClearKey] = {}
    for tid in terminals:
        kek = generate_key(Algorithm.TDES2)
        sign_on = sign_on_key(kek, tid, Algorithm.TDES2)
        added = store.add_terminal_blocks(
            tid,
            Family.TDES,
            console_formed(hsm.lmk, kek, "K0", Algorithm.TDES2),
            kcv(kek, Algorithm.TDES2),
            console_formed(hsm.lmk, sign_on, "M3", Algorithm.TDES2),
            kcv(sign_on, Algorithm.TDES2),
        )
        installed = install_key_change(kek, added.payload)
        keks[tid] = kek
        terminal_keys[tid] = installed.mac_key()
        tpks[tid] = installed.get(KeyType.TPK)
    zpk: ClearKey | None = None
    if zmk_components is not None:
        zmk = adjust_parity(xor(*zmk_components))
        block = form_key(hsm.lmk, list(zmk_components), "K0", Algorithm.TDES2)
        info = store.add_acquirer_blocks("bank", Algorithm.TDES2, block, kcv(zmk, Algorithm.TDES2))
        zpk = install_key_change(zmk, info.payload).get(KeyType.ZPK)
    return PreparedKeys(store, lmk, terminal_keys, keks, tpks, zpk)
