"""A key change: the new working keys of one owner as the sign-on answer carries them.

`KeyStore.rotate` hands it to the switch, which puts `field96` (1993) or
`field48` (1987) in the answer, sends it, then hands it back to
`KeyStore.mark_delivered`. It names keys by type, version and KCV only; the
keys themselves travel inside the payload, wrapped under the KEK/ZMK.
"""

from __future__ import annotations

import attrs
from forecourt.keys.crypto import Algorithm
from forecourt.keys.errors import UnknownKey
from forecourt.keys.keyring import MacKeyring
from forecourt.keys.mac import PreparedMac
from forecourt.keys.model import KeyType, OwnerKind
from forecourt.keys.security_module import KeyRef as ModuleKeyRef


@attrs.frozen
class ChangedKey:
    key_type: KeyType
    version: int
    kcv: str


@attrs.frozen(repr=False, eq=False)
class IssuedKey:
    """A new (or re-sent) working key: its reference, the block under the KEK/ZMK
    for the payload, and its prepared MAC where the vault is software (None on a
    payment HSM, where the key never leaves the device)."""

    key_type: KeyType
    version: int
    algorithm: Algorithm
    kcv: str
    wire: str
    ref: ModuleKeyRef
    mac: PreparedMac | None = None

    @property
    def changed(self) -> ChangedKey:
        return ChangedKey(self.key_type, self.version, self.kcv)

    def __repr__(self) -> str:
        return f"IssuedKey({self.key_type.value} v{self.version} kcv={self.kcv})"


@attrs.frozen(eq=False)
class KeyChange:
    """New working keys of one owner, ready for the wire.

    `payload` is the field 48 string; `field96` the same bytes. `keyring` is the
    MAC keyring as it will be once the change is delivered (authoritative one:
    the return value of `KeyStore.mark_delivered`).
    """

    owner: str
    kind: OwnerKind
    keys: tuple[ChangedKey, ...]
    payload: str
    activated: bool
    keyring: MacKeyring

    @property
    def field48(self) -> str:
        return self.payload

    @property
    def field96(self) -> bytes:
        return self.payload.encode("ascii")

    def version_of(self, key_type: KeyType) -> int:
        for k in self.keys:
            if k.key_type is key_type:
                return k.version
        raise UnknownKey(f"key change carries no {key_type.value}")

    def describe(self) -> str:
        """The versions and KCVs, for a log line: `TAKv2/C1F087,TPKv2/...`."""
        return ",".join(f"{k.key_type.value}v{k.version}/{k.kcv}" for k in self.keys)
