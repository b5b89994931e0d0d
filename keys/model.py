"""Value types of the key hierarchy: key types, states, policy, records."""

from __future__ import annotations

import enum

import attrs
from forecourt.keys.crypto import Algorithm


class OwnerKind(enum.Enum):
    TERMINAL = "terminal"
    ACQUIRER = "acquirer"
    BDK = "bdk"  # a base derivation key: the owner of DUKPT terminals' initial keys


class KeyType(enum.Enum):
    """Key types, named as payment engineers name them."""

    KEK = "KEK"  # terminal master key: wraps the terminal's working keys
    TAK = "TAK"  # terminal MAC key
    TPK = "TPK"  # terminal PIN key
    TDK = "TDK"  # terminal data key
    ZMK = "ZMK"  # zone master key of an acquirer link
    ZAK = "ZAK"  # zone MAC key
    ZPK = "ZPK"  # zone PIN key
    BDK = "BDK"  # DUKPT base derivation key (TR-31 B0): never leaves the module
    IK = "IK"  # a DUKPT terminal's initial key (IPEK; TR-31 B1), only for injection
    # a terminal's sign-on proof key formed at a payment HSM's console (keys/sign_on.py;
    # the software backend derives it from the KEK instead and stores no row)
    SOK = "SOK"

    @property
    def is_master(self) -> bool:
        """Keys that never travel in a key-change payload (exportable "N")."""
        return self in (KeyType.KEK, KeyType.ZMK, KeyType.BDK, KeyType.IK, KeyType.SOK)

    @property
    def is_mac(self) -> bool:
        return self in (KeyType.TAK, KeyType.ZAK)


WORKING_TYPES: dict[OwnerKind, tuple[KeyType, ...]] = {
    OwnerKind.TERMINAL: (KeyType.TAK, KeyType.TPK, KeyType.TDK),
    OwnerKind.ACQUIRER: (KeyType.ZAK, KeyType.ZPK),
}
MASTER_TYPE: dict[OwnerKind, KeyType] = {
    OwnerKind.TERMINAL: KeyType.KEK,
    OwnerKind.ACQUIRER: KeyType.ZMK,
}
MAC_TYPE: dict[OwnerKind, KeyType] = {
    OwnerKind.TERMINAL: KeyType.TAK,
    OwnerKind.ACQUIRER: KeyType.ZAK,
}
PIN_TYPE: dict[OwnerKind, KeyType] = {
    OwnerKind.TERMINAL: KeyType.TPK,
    OwnerKind.ACQUIRER: KeyType.ZPK,
}


class KeyState(enum.Enum):
    PENDING = "pending"  # generated, not yet delivered
    ACTIVE = "active"  # the one key of its type in use
    RETIRING = "retiring"  # replaced; still accepted until its grace window ends
    RETIRED = "retired"  # never accepted again


@attrs.frozen
class KeyPolicy:
    """Rotation policy. Why: the daily sign-on replaces keys; a key older than
    `max_age` (or used `max_uses` times) is refused with 917 until it is."""

    max_age: float = 24 * 3600.0
    max_uses: int | None = None
    grace: float = 300.0
    # How many previous versions stay in grace after an activation; older ones
    # are retired at once (a terminal holds one key; two is the usual "old/new").
    grace_versions: int = 1


@attrs.frozen
class KeyInfo:
    """A stored key as the operator sees it: never the key itself."""

    id: str
    owner: str
    key_type: KeyType
    algorithm: Algorithm
    version: int
    kcv: str
    state: KeyState
    created_at: float
    activated_at: float | None
    expires_at: float | None
    retiring_until: float | None
    uses: int


@attrs.frozen
class OwnerInfo:
    name: str
    kind: OwnerKind
    created_at: float


@attrs.frozen
class AuditEntry:
    """One line of the rotation audit: who, when, which versions and KCVs."""

    at: float
    actor: str
    action: str
    owner: str
    key_type: KeyType | None
    old_version: int | None
    old_kcv: str | None
    new_version: int | None
    new_kcv: str | None
    reason: str


@attrs.frozen(repr=False)
class KekCeremony:
    """What `add_terminal` hands out once: two clear components and the KCVs.

    The repr never shows the components or the KEK.
    """

    terminal_id: str
    algorithm: Algorithm
    components: tuple[bytes, bytes]
    component_kcvs: tuple[str, str]
    kcv: str
    clear_kek: bytes
    payload: str  # the initial working keys (version 1) under this KEK, as field 48/96 carry

    def __repr__(self) -> str:
        return (
            f"KekCeremony(terminal_id={self.terminal_id!r}, algorithm={self.algorithm.value},"
            f" kcv={self.kcv})"
        )


@attrs.frozen
class AcquirerInfo:
    """What `add_acquirer` returns: the ZMK's KCV and the first ZAK/ZPK payload."""

    name: str
    algorithm: Algorithm
    zmk_kcv: str
    payload: str


@attrs.frozen
class ConsoleTerminal:
    """What `add_terminal_blocks` returns: a terminal registered from blocks formed at
    the HSM console (KEK and sign-on key KCVs, as BU computed them) and its first
    working keys' payload under the KEK."""

    terminal_id: str
    algorithm: Algorithm
    kcv: str
    sign_on_kcv: str
    payload: str
