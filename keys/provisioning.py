"""Provisioning: a new owner's master key from clear components, and its first working keys.

A terminal's KEK comes from a key ceremony (two random components, each for its
own custodian: see `ceremony`) or from two components it already holds; an
acquirer link's ZMK is the XOR of the components its custodians bring. Each
component is checked against its custodian's KCV, the result against theirs. Either way the
owner starts with version 1 of every working key, active, wrapped under the
master key for the terminal's or host's first sign-on.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import attrs
from forecourt.keys import audit, key_rows, owners
from forecourt.keys.backend import Tx
from forecourt.keys.crypto import (
    Algorithm,
    Family,
    adjust_parity,
    generate_key,
    kcv,
    kcv_matches,
    working_algorithm_under,
    xor,
)
from forecourt.keys.errors import InvalidKey, KcvMismatch
from forecourt.keys.exchange import PayloadEntry, encode_payload
from forecourt.keys.model import (
    MASTER_TYPE,
    WORKING_TYPES,
    AcquirerInfo,
    KekCeremony,
    KeyPolicy,
    KeyState,
    OwnerKind,
)
from forecourt.keys.vault import Vault

log = logging.getLogger("forecourt.keys")

_ZMK_ALGORITHM = {16: Algorithm.TDES2, 24: Algorithm.TDES3, 32: Algorithm.AES256}


@attrs.frozen(repr=False)
class MasterKey:
    """A clear KEK or ZMK and the components it was made of (the repr shows the KCV only)."""

    algorithm: Algorithm
    key: bytes
    components: tuple[bytes, ...]
    kcv: str

    @classmethod
    def of(cls, algorithm: Algorithm, key: bytes, components: Sequence[bytes]) -> MasterKey:
        return cls(algorithm, key, tuple(bytes(c) for c in components), kcv(key, algorithm))

    def __repr__(self) -> str:
        return f"MasterKey({self.algorithm.value}, kcv={self.kcv})"


def terminal_kek(family: Family, components: Sequence[bytes] | None = None) -> MasterKey:
    """A fresh KEK from two random components, or the one `components` make."""
    algorithm = family.kek_algorithm
    if components is not None:
        if len(components) != 2 or any(len(c) != algorithm.key_length for c in components):
            raise InvalidKey(
                f"a {algorithm.value} KEK is loaded from two {algorithm.key_length}-byte components"
            )
        c1, c2 = bytes(components[0]), bytes(components[1])
    else:
        c1, c2 = generate_key(algorithm), generate_key(algorithm)
    kek = xor(c1, c2)
    if not algorithm.is_aes:
        kek = adjust_parity(kek)
    return MasterKey.of(algorithm, kek, (c1, c2))


def zmk_algorithm(component_length: int) -> Algorithm:
    """The ZMK algorithm a component's length implies (16 B: TDES-2, 24: TDES-3, 32: AES-256)."""
    algorithm = _ZMK_ALGORITHM.get(component_length)
    if algorithm is None:
        raise InvalidKey("ZMK components must be 16, 24 or 32 bytes")
    return algorithm


def check_component(number: int, component: bytes, algorithm: Algorithm, expected_kcv: str) -> None:
    """Refuse a component that does not match the KCV on its custodian's record.

    Checked per component, so a mistyped component is named before a master
    key is formed; the message names the component, never its value or its
    actual KCV (an operator must not be able to copy the KCV from the error).
    """
    if len(component) != algorithm.key_length:
        raise InvalidKey(
            f"component {number} must be {algorithm.key_length} bytes"
            f" ({2 * algorithm.key_length} hex digits) for a {algorithm.value} key"
        )
    if not kcv_matches(expected_kcv, kcv(component, algorithm)):
        raise KcvMismatch(
            f"component {number} does not match KCV {expected_kcv.strip().upper()}"
            f"; check it with custodian {number}; nothing stored"
        )


def check_master(master: MasterKey, expected_kcv: str, what: str) -> None:
    """Refuse a combined key whose KCV is not the one the custodians recorded."""
    if not kcv_matches(expected_kcv, master.kcv):
        raise KcvMismatch(
            f"{what} made of these components does not match KCV"
            f" {expected_kcv.strip().upper()}; nothing stored"
        )


def zone_master_key(components: Sequence[bytes], expected_kcv: str | None = None) -> MasterKey:
    """ZMK = XOR of the components (16 bytes: TDES-2, 24: TDES-3, 32: AES-256),
    refused if it does not match the custodians' KCV."""
    if len(components) < 2:
        raise InvalidKey("a ZMK needs at least two components")
    algorithm = zmk_algorithm(len(components[0]))
    zmk = components[0]
    for c in components[1:]:
        zmk = xor(zmk, c)
    if not algorithm.is_aes:
        zmk = adjust_parity(zmk)
        if len({zmk[i : i + 8] for i in range(0, len(zmk), 8)}) != len(zmk) // 8:
            raise InvalidKey("ZMK halves are equal (a degenerate TDES key)")
    master = MasterKey.of(algorithm, zmk, components)
    if expected_kcv is not None:
        check_master(master, expected_kcv, "the ZMK")
    return master


def register(
    tx: Tx,
    vault: Vault,
    policy: KeyPolicy,
    owner: str,
    kind: OwnerKind,
    master: MasterKey,
    now: float,
    actor: str,
) -> str:
    """Record the owner, its clear master key (software vault) and v1 of its
    working keys (active); returns the payload of those working keys under it."""
    owners.register(tx, owner, kind, now)
    master_type = MASTER_TYPE[kind]
    check = vault.insert(
        tx, owner, master_type, master.algorithm, 1, master.key, KeyState.ACTIVE, now, 0.0
    )
    audit.record(tx, now, actor, f"add-{kind.value}", owner, master_type, new=(1, check))
    return first_working_keys(tx, vault, policy, owner, kind, now, actor)


def register_block(
    tx: Tx,
    vault: Vault,
    policy: KeyPolicy,
    owner: str,
    kind: OwnerKind,
    master: ConsoleKey,
    now: float,
    actor: str,
) -> str:
    """As `register`, for a master key formed at a payment HSM's console: its row
    holds the HSM's block (already checked by the vault: usage, LMK, KCV)."""
    owners.register(tx, owner, kind, now)
    master_type = MASTER_TYPE[kind]
    key_rows.insert_row(
        tx, owner, master_type, master.algorithm, 1, master.block, master.kcv,
        KeyState.ACTIVE, now, 0.0,
    )  # fmt: skip
    audit.record(tx, now, actor, f"add-{kind.value}", owner, master_type, new=(1, master.kcv))
    return first_working_keys(tx, vault, policy, owner, kind, now, actor)


def first_working_keys(
    tx: Tx, vault: Vault, policy: KeyPolicy, owner: str, kind: OwnerKind, now: float, actor: str
) -> str:
    """Version 1 of the owner's working keys, active, made by the vault under its
    master key; the payload that carries them under it."""
    master = key_rows.master_row(tx, owner, kind)
    working = working_algorithm_under(master.algorithm)
    entries: list[PayloadEntry] = []
    for key_type in WORKING_TYPES[kind]:
        new = vault.generate_under(master, key_type, working)
        key_rows.insert_row(
            tx, owner, key_type, working, 1, new.block, new.kcv, KeyState.ACTIVE, now,
            policy.grace, expires_at=now + policy.max_age,
        )  # fmt: skip
        audit.record(tx, now, actor, "create", owner, key_type, new=(1, new.kcv))
        entries.append(PayloadEntry(key_type, 1, new.kcv, new.wire))
    return encode_payload(entries)


@attrs.frozen(repr=False)
class ConsoleKey:
    """A key formed at the HSM console: its 'S' block and KCV (checked by BU)."""

    algorithm: Algorithm
    block: str
    kcv: str

    def __repr__(self) -> str:
        return f"ConsoleKey({self.algorithm.value}, kcv={self.kcv})"


def kek_ceremony(terminal_id: str, kek: MasterKey, payload: str) -> KekCeremony:
    c1, c2 = kek.components
    return KekCeremony(
        terminal_id=terminal_id,
        algorithm=kek.algorithm,
        components=(c1, c2),
        component_kcvs=(kcv(c1, kek.algorithm), kcv(c2, kek.algorithm)),
        kcv=kek.kcv,
        clear_kek=kek.key,
        payload=payload,
    )


def acquirer_info(name: str, zmk: MasterKey, payload: str) -> AcquirerInfo:
    return AcquirerInfo(name=name, algorithm=zmk.algorithm, zmk_kcv=zmk.kcv, payload=payload)
