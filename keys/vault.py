"""The vault: what a key row's `key_block` holds, and the only code that makes or opens one.

A store keeps every key as a block under some LMK; the vault is who holds that
LMK. `Vault` is the small protocol the store's modules (provisioning, rotation,
keyrings) use, so a backend is one more implementation of it:

- `KeyVault` (`[keys] backend = "software"`): TR-31 version D blocks under the
  software LMK; keys are generated in this process (`os.urandom`), wrapped, and
  prepared for MACs here;
- `PayShieldVault` (`keys/payshield_vault.py`, `backend = "payshield"`): the
  HSM's 'S' blocks under its own LMK; keys are generated in the HSM (A0), sent
  under a KEK/ZMK by it (A8), and their KCVs come from it (BU). It refuses every
  call that would hand out a clear key (`ClearKeyRefused`).
"""

from __future__ import annotations

from typing import Protocol

import attrs
from forecourt.keys import tr31
from forecourt.keys.backend import Tx
from forecourt.keys.crypto import Algorithm, generate_key, kcv
from forecourt.keys.errors import KeyErased
from forecourt.keys.key_rows import KeyRow, insert_row, master_row
from forecourt.keys.lmk import Lmk
from forecourt.keys.mac import MacAlgorithm, PreparedMac, prepare_mac
from forecourt.keys.model import KeyState, KeyType, OwnerKind
from forecourt.keys.security_module import KeyRef as ModuleKeyRef

SOFTWARE = "software"


@attrs.frozen(repr=False)
class GeneratedKey:
    """A new working key as the vault made it: its row block, its KCV, the same key
    under the owner's KEK/ZMK for the payload, and (software only) its prepared MAC."""

    block: str
    kcv: str
    wire: str
    mac: PreparedMac | None = None

    def __repr__(self) -> str:
        return f"GeneratedKey(kcv={self.kcv})"


class Vault(Protocol):
    """What the store's modules ask of whoever holds the LMK."""

    @property
    def backend(self) -> str:
        """The security-module backend whose references the rows' blocks are."""
        ...

    def insert(
        self,
        tx: Tx,
        owner: str,
        key_type: KeyType,
        algorithm: Algorithm,
        version: int,
        key: bytes,
        state: KeyState,
        now: float,
        grace: float,
        expires_at: float | None = None,
    ) -> str:
        """Store a clear key (a ceremony's result) as a new row; returns its KCV."""
        ...

    def generate_under(
        self, master: KeyRow, key_type: KeyType, algorithm: Algorithm
    ) -> GeneratedKey:
        """A fresh working key, and the same key under `master` (the KEK/ZMK row)."""
        ...

    def export_under(self, master: KeyRow, row: KeyRow) -> str:
        """`row`'s key under `master`, for a payload sent again."""
        ...

    def prepared_mac(self, row: KeyRow) -> PreparedMac | None:
        """`row` prepared for MACs in this process, or None where keys stay in a device."""
        ...

    def unwrap(self, row: KeyRow) -> bytes:
        """The clear key of `row` (software only)."""
        ...

    def master(self, tx: Tx, owner: str, kind: OwnerKind) -> tuple[Algorithm, bytes]:
        """The owner's clear KEK/ZMK (software only)."""
        ...

    def ref(self, row: KeyRow) -> ModuleKeyRef:
        """`row` as a security-module reference of this backend."""
        ...


@attrs.frozen
class KeyVault:
    """The software vault: wraps keys under the LMK on the way into a row and
    unwraps them on the way out."""

    lmk: Lmk = attrs.field(repr=False)
    backend = SOFTWARE

    def insert(
        self,
        tx: Tx,
        owner: str,
        key_type: KeyType,
        algorithm: Algorithm,
        version: int,
        key: bytes,
        state: KeyState,
        now: float,
        grace: float,
        expires_at: float | None = None,
    ) -> str:
        """Store `key` as a new row; returns its KCV (the only trace of it in logs)."""
        check = kcv(key, algorithm)
        block = self.wrap(key, key_type, algorithm)
        insert_row(
            tx, owner, key_type, algorithm, version, block, check, state, now, grace, expires_at
        )
        return check

    def wrap(self, key: bytes, key_type: KeyType, algorithm: Algorithm) -> str:
        """`key` as a TR-31 block under the LMK: a row's `key_block`, and the handle
        of the software security module's reference to it."""
        return tr31.wrap(
            self.lmk.key,
            Algorithm.AES256,
            key,
            key_type,
            algorithm,
            exportability="N" if key_type.is_master else "E",
        )

    def key_ref(self, key: bytes, key_type: KeyType, algorithm: Algorithm) -> ModuleKeyRef:
        """A software security-module reference to a clear key (a new working key,
        a key derived from a KEK)."""
        return ModuleKeyRef(
            key_type, algorithm, kcv(key, algorithm), self.wrap(key, key_type, algorithm)
        )

    def ref(self, row: KeyRow) -> ModuleKeyRef:
        return row.key_ref(SOFTWARE)

    def unwrap(self, row: KeyRow) -> bytes:
        """The clear key of `row`; KeyErased for a retired key (its block is gone)."""
        if row.erased:
            raise KeyErased(f"{row.id} (KCV {row.kcv}) is retired: its key block was erased")
        return tr31.unwrap(self.lmk.key, row.key_block, row.key_type, row.algorithm)

    def master(self, tx: Tx, owner: str, kind: OwnerKind) -> tuple[Algorithm, bytes]:
        """The owner's clear KEK/ZMK, to wrap working keys for the wire."""
        row = master_row(tx, owner, kind)
        return row.algorithm, self.unwrap(row)

    def _on_wire(self, master: KeyRow, key: bytes, key_type: KeyType, algorithm: Algorithm) -> str:
        return tr31.wrap(
            self.unwrap(master), master.algorithm, key, key_type, algorithm, exportability="N"
        )

    def generate_under(
        self, master: KeyRow, key_type: KeyType, algorithm: Algorithm
    ) -> GeneratedKey:
        key = generate_key(algorithm)
        mac = prepare_mac(key, MacAlgorithm.for_key(algorithm)) if key_type.is_mac else None
        return GeneratedKey(
            self.wrap(key, key_type, algorithm),
            kcv(key, algorithm),
            self._on_wire(master, key, key_type, algorithm),
            mac,
        )

    def export_under(self, master: KeyRow, row: KeyRow) -> str:
        return self._on_wire(master, self.unwrap(row), row.key_type, row.algorithm)

    def prepared_mac(self, row: KeyRow) -> PreparedMac | None:
        return prepare_mac(self.unwrap(row), MacAlgorithm.for_key(row.algorithm))
