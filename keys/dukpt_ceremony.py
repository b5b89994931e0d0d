"""DUKPT ceremonies: a BDK into the store, a terminal's initial key out for injection.

Both keep split knowledge the way the KEK ceremony does (keys/ceremony.py): a
new BDK, and a terminal's initial key (IPEK / AES initial key), are made of two
components, each shown to its own custodian with the screen cleared between
them, or written to one 0600 file each; a BDK brought by custodians is read
component by component at a no-echo prompt or from files, every KCV checked
before anything is stored. The BDK itself is never shown, written or printed
after its ceremony: the initial key is derived inside the security module.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path

import attrs
from forecourt.keys import ceremony, owners, provisioning
from forecourt.keys.component_files import CeremonyError, write_component_files
from forecourt.keys.crypto import Algorithm, adjust_parity, generate_key, kcv, xor
from forecourt.keys.dukpt_store import DukptScheme, DukptTerminal, initial_key_kcv
from forecourt.keys.provisioning import MasterKey
from forecourt.keys.software_module import SoftwareModule
from forecourt.keys.store import KeyStore

__all__ = ["BdkResult", "InitialKeyResult", "import_bdk", "new_bdk", "new_dukpt_terminal"]


@attrs.frozen
class BdkResult:
    name: str
    algorithm: Algorithm
    kcv: str
    component_kcvs: tuple[str, ...]


@attrs.frozen
class InitialKeyResult:
    terminal: DukptTerminal
    bdk_kcv: str
    kcv: str
    component_kcvs: tuple[str, str]
    files: tuple[Path, ...]


def _split(key: bytes, algorithm: Algorithm) -> MasterKey:
    """Two components whose XOR is `key`: one random, the other the difference."""
    c1 = os.urandom(len(key))
    if not algorithm.is_aes:
        c1 = adjust_parity(c1)
    return MasterKey.of(algorithm, key, (c1, xor(key, c1)))


def _hand_out(
    master: MasterKey,
    custodians: ceremony.Custodians | None,
    component_dir: Path | None,
    stem: str,
    label: str,
    what: str,
) -> list[Path]:
    if component_dir is not None:
        return write_component_files(component_dir, stem, label, master, what)
    if custodians is None:
        raise CeremonyError(
            f"the {what} components are shown on a terminal, one custodian at a time;"
            " without a terminal give --component-files DIR"
        )
    ceremony.show_components(custodians, label, master, what)
    return []


def new_bdk(
    store: KeyStore,
    name: str,
    algorithm: Algorithm,
    *,
    custodians: ceremony.Custodians | None,
    component_dir: Path | None,
    actor: str,
) -> BdkResult:
    """A fresh BDK from two random components, each to its custodian, then stored."""
    owners.check_acquirer_name(name)
    ceremony.check_new_owner(store, name)
    c1, c2 = generate_key(algorithm), generate_key(algorithm)
    key = xor(c1, c2)
    if not algorithm.is_aes:
        key = adjust_parity(key)
    master = MasterKey.of(algorithm, key, (c1, c2))
    label = f"BDK {name}"
    written = _hand_out(master, custodians, component_dir, name, label, "BDK")
    try:
        check = store.dukpt().add_bdk(name, algorithm, key, time.time(), actor)
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise
    return BdkResult(name, algorithm, check, tuple(kcv(c, algorithm) for c in (c1, c2)))


def import_bdk(
    store: KeyStore,
    name: str,
    algorithm: Algorithm,
    *,
    custodians: ceremony.Custodians | None,
    files: Sequence[Path],
    count: int,
    component_kcvs: Sequence[str],
    bdk_kcv: str | None,
    actor: str,
) -> BdkResult:
    """A BDK its custodians bring, 2 to 9 components, every KCV checked first."""
    owners.check_acquirer_name(name)
    if files:
        count = len(files)
    if not 2 <= count <= 9:
        raise CeremonyError("a BDK is made of 2 to 9 components")
    if bdk_kcv is not None:
        ceremony.check_kcv_text(bdk_kcv, "--kcv")
    ceremony.check_new_owner(store, name)
    ceremony.check_sources(custodians, files, count, component_kcvs, bdk_kcv)
    components = ceremony.read_components(
        custodians, files, count, component_kcvs, lambda _: algorithm
    )
    key = components[0]
    for c in components[1:]:
        key = xor(key, c)
    if not algorithm.is_aes:
        key = adjust_parity(key)
    expected = ceremony.combined_kcv(custodians, bdk_kcv, "BDK")
    provisioning.check_master(MasterKey.of(algorithm, key, components), expected, "the BDK")
    check = store.dukpt().add_bdk(name, algorithm, key, time.time(), actor)
    return BdkResult(name, algorithm, check, tuple(kcv(c, algorithm) for c in components))


def new_dukpt_terminal(
    store: KeyStore,
    terminal_id: str,
    bdk: str,
    initial_key_id: bytes,
    *,
    custodians: ceremony.Custodians | None,
    component_dir: Path | None,
    actor: str,
) -> InitialKeyResult:
    """Derive the terminal's initial key from the BDK in the security module, hand
    its two components to the custodians (or files) for the key loader, then
    register the terminal with its initial key ID."""
    owners.check_terminal_id(terminal_id)
    ceremony.check_new_owner(store, terminal_id)
    registry = store.dukpt()
    ref = registry.bdk_ref(bdk)
    module = SoftwareModule(store.lmk)
    key, algorithm = module.initial_key(ref, initial_key_id)
    scheme = DukptScheme.AES if ref.algorithm.is_aes else DukptScheme.TDES
    check = initial_key_kcv(key, scheme, algorithm)
    master = _split(key, algorithm)
    label = f"terminal {terminal_id}"
    written = _hand_out(master, custodians, component_dir, terminal_id, label, "initial key")
    try:
        terminal = registry.add_terminal(
            terminal_id, bdk, initial_key_id, check, time.time(), actor
        )
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise
    c1, c2 = master.components
    return InitialKeyResult(
        terminal, ref.kcv, check, (kcv(c1, algorithm), kcv(c2, algorithm)), tuple(written)
    )
