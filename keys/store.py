"""The key store: the one public face over the key modules.

Methods are synchronous and thread-safe (the switch calls them through
`trio.to_thread`). Each opens one transaction on the backend and lets the
module of the concept do the work inside it: `stamp` (location and LMK),
`owners`, `provisioning`, `key_rows` (TR-31 blocks under the LMK), `rotation`,
`mac_keyrings`, `audit`; PIN and sign-on keys are `store_pins`, console-formed
master keys `store_console`. Rows, audit lines, logs and errors carry ids,
versions and KCVs.

Who holds the LMK of the rows is the vault (`keys/vault.py`): on the software
backend clear keys exist in this process, inside prepared MAC objects and for
the moment of wrapping; on a payment HSM (`backend="payshield"`) the rows hold
the HSM's blocks and no clear key ever comes here. The store's own software LMK
still seals what is not a payment key (SAF records, wallet secrets).
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from forecourt.keys import audit, key_rows, owners, provisioning, stamp
from forecourt.keys.backend import Backend
from forecourt.keys.crypto import Family
from forecourt.keys.dukpt_store import DukptRegistry
from forecourt.keys.errors import InvalidKey
from forecourt.keys.key_change import ChangedKey, KeyChange
from forecourt.keys.keyring import MacKeyring
from forecourt.keys.lmk import Lmk
from forecourt.keys.mac_keyrings import MacKeyrings
from forecourt.keys.model import (
    MAC_TYPE,
    AcquirerInfo,
    AuditEntry,
    KekCeremony,
    KeyInfo,
    KeyPolicy,
    OwnerInfo,
    OwnerKind,
)
from forecourt.keys.payshield.client import BlockingClient
from forecourt.keys.payshield_module import PayShieldSettings
from forecourt.keys.payshield_vault import PayShieldVault
from forecourt.keys.rotation import Rotation
from forecourt.keys.security_module import ModuleUnavailable
from forecourt.keys.stamp import SOFTWARE, default_data_dir
from forecourt.keys.store_console import ConsoleProvisioning
from forecourt.keys.store_pins import PinAndSignOn
from forecourt.keys.vault import KeyVault, Vault
from forecourt.keys.wallet_secrets import WalletSecrets

# Names that lived here before the split; `forecourt.keys.store` still offers them.
__all__ = ["ChangedKey", "KeyChange", "KeyStore", "default_data_dir"]

log = logging.getLogger("forecourt.keys")


BACKENDS = (SOFTWARE, "payshield")


def _vault_for(
    backend: Backend, lmk: Lmk, module: str, payshield: PayShieldSettings | None
) -> Vault:
    """The vault of a store opened for `module`; a device store is stamped with the
    device's LMK check (NC) on first use and compared on every later one (at once
    when the HSM answers; else before the first command that reaches it)."""
    if module == SOFTWARE:
        return KeyVault(lmk)
    if module != "payshield":
        raise InvalidKey(f'[keys] backend "{module}": a key store is one of {", ".join(BACKENDS)}')
    s = payshield or PayShieldSettings()
    client = BlockingClient(s.host, s.port, header_length=s.header_length, timeout_s=s.timeout_s)
    vault = PayShieldVault(client, functools.partial(stamp.device_stamp, backend))
    try:
        vault.check_stamp()
    except ModuleUnavailable:
        log.warning("key store opened while the HSM does not answer at %s:%d", s.host, s.port)
    except BaseException:
        vault.close()
        raise
    return vault


class KeyStore(PinAndSignOn, ConsoleProvisioning):
    """Keys of terminals and acquirer links. Open with `KeyStore.open` / `init`."""

    def __init__(
        self,
        backend: Backend,
        lmk: Lmk,
        policy: KeyPolicy | None = None,
        clock: Callable[[], float] = time.time,
        vault: Vault | None = None,
    ) -> None:
        self._db = backend
        self._lmk = lmk
        self._vault = vault or KeyVault(lmk)
        self.policy = policy or KeyPolicy()
        self._clock = clock
        self._rotation = Rotation(self._vault, self.policy)
        self._keyrings = MacKeyrings(self._vault, self.policy, clock)

    def __repr__(self) -> str:
        return (
            f"KeyStore(backend={self._db.name}, keys={self._vault.backend}, lmk_kcv={self.lmk_kcv})"
        )

    # -- opening ------------------------------------------------------------

    @classmethod
    def open(
        cls,
        data_dir: Path | str | None = None,
        *,
        dsn: str | None = None,
        lmk: Lmk | None = None,
        lmk_file: Path | str | None = None,
        policy: KeyPolicy | None = None,
        clock: Callable[[], float] = time.time,
        allow_lmk_in_data_dir: bool = False,
        module: str = SOFTWARE,
        payshield: PayShieldSettings | None = None,
    ) -> KeyStore:
        """Open an initialised store; the LMK is `lmk`, else FORECOURT_LMK, else
        `lmk_file`, else the file `init` wrote. An LMK file inside data_dir is
        refused unless `allow_lmk_in_data_dir` (demos). `module` is `[keys]
        backend`: the store must have been made for it. Raises LmkMissing,
        LmkInvalid, LmkInDataDir, LmkMismatch, StoreNotInitialised,
        StoreBackendMismatch, ModuleUnavailable (no HSM)."""
        backend, lmk = stamp.open_stamped(
            data_dir, dsn, lmk, lmk_file, allow_lmk_in_data_dir, module
        )
        try:
            vault = _vault_for(backend, lmk, module, payshield)
        except BaseException:
            backend.close()
            raise
        return cls(backend, lmk, policy, clock, vault)

    @classmethod
    def init(
        cls,
        data_dir: Path | str | None = None,
        *,
        dsn: str | None = None,
        lmk: Lmk | None = None,
        lmk_file: Path | str | None = None,
        policy: KeyPolicy | None = None,
        clock: Callable[[], float] = time.time,
        allow_lmk_in_data_dir: bool = False,
        module: str = SOFTWARE,
        payshield: PayShieldSettings | None = None,
    ) -> KeyStore:
        """Create the store, and the LMK file (0600) unless an LMK is given or in
        the environment (an existing LMK file is reused, never overwritten); a
        store for a device `module` is stamped as such. Raises StoreExists,
        LmkInDataDir."""
        if module not in BACKENDS:
            raise InvalidKey(
                f'[keys] backend "{module}": a key store is one of {", ".join(BACKENDS)}'
            )
        backend, lmk = stamp.create_stamped(
            data_dir, dsn, lmk, lmk_file, clock(), allow_lmk_in_data_dir, module
        )
        try:
            vault = _vault_for(backend, lmk, module, payshield)
        except BaseException:
            backend.close()
            raise
        return cls(backend, lmk, policy, clock, vault)

    def close(self) -> None:
        self._db.close()
        if isinstance(self._vault, PayShieldVault):
            self._vault.close()

    def __enter__(self) -> KeyStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def lmk_kcv(self) -> str:
        return self._lmk.kcv

    @property
    def lmk(self) -> Lmk:
        """The LMK the store was opened under, for keys derived from it (SAF sealing)."""
        return self._lmk

    @property
    def key_backend(self) -> str:
        """`[keys] backend` of the rows' blocks: "software" or "payshield"."""
        return self._vault.backend

    def dukpt(self) -> DukptRegistry:
        """BDKs, DUKPT terminals and their KSN high-water marks (keys/dukpt_store.py)."""
        return DukptRegistry(self._db, self._vault)

    def wallet_secrets(self) -> WalletSecrets:
        """Wallet providers' signing material, sealed under this store's LMK."""
        return WalletSecrets(self._db, self._lmk)

    # -- provisioning ------------------------------------------------------

    def add_terminal(
        self,
        terminal_id: str,
        family: Family | str = Family.TDES,
        *,
        actor: str = "api",
        now: float | None = None,
        components: Sequence[bytes] | None = None,
    ) -> KekCeremony:
        """Register a terminal: a fresh KEK from two random components (the key
        ceremony) and first working keys TAK/TPK/TDK, version 1, active.

        `components` loads a KEK the terminal already holds (two clear components,
        e.g. a certification test key) instead of making a new one."""
        owners.check_terminal_id(terminal_id)
        kek = provisioning.terminal_kek(Family(family), components)
        t = self._now(now)
        with self._db.write() as tx:
            payload = provisioning.register(
                tx, self._vault, self.policy, terminal_id, OwnerKind.TERMINAL, kek, t, actor
            )
        log.info("terminal registered terminal_id=%s kek_kcv=%s", terminal_id, kek.kcv)
        return provisioning.kek_ceremony(terminal_id, kek, payload)

    def add_acquirer(
        self,
        name: str,
        components: Sequence[bytes],
        *,
        expected_kcv: str | None = None,
        actor: str = "api",
        now: float | None = None,
    ) -> AcquirerInfo:
        """Register an acquirer link: ZMK = XOR of the clear components (16 bytes:
        TDES-2, 24: TDES-3, 32: AES-256); refuses a KCV mismatch; makes ZAK/ZPK v1."""
        owners.check_acquirer_name(name)
        zmk = provisioning.zone_master_key(components, expected_kcv)
        t = self._now(now)
        with self._db.write() as tx:
            payload = provisioning.register(
                tx, self._vault, self.policy, name, OwnerKind.ACQUIRER, zmk, t, actor
            )
        log.info("acquirer registered name=%s zmk_kcv=%s", name, zmk.kcv)
        return provisioning.acquirer_info(name, zmk, payload)

    # -- queries -----------------------------------------------------------

    def owners(self, kind: OwnerKind | None = None) -> list[OwnerInfo]:
        with self._db.read() as tx:
            return owners.listed(tx, kind)

    def terminals(self) -> list[str]:
        return [o.name for o in self.owners(OwnerKind.TERMINAL)]

    def acquirers(self) -> list[str]:
        return [o.name for o in self.owners(OwnerKind.ACQUIRER)]

    def is_registered(self, terminal_id: str) -> bool:
        with self._db.read() as tx:
            return owners.is_terminal(tx, terminal_id)

    def list_keys(self, owner: str | None = None) -> list[KeyInfo]:
        with self._db.read() as tx:
            rows = key_rows.select_all(tx, owner)
        return [r.info() for r in rows]

    def audit_mark(self) -> int:
        """The newest key audit row's id: where `changed_since` starts."""
        with self._db.read() as tx:
            return audit.mark(tx)

    def changed_since(self, mark: int) -> tuple[int, set[str]]:
        """Owners with key audit rows after `mark` (a rotation, an activation, a
        new registration: made by any process sharing the store), and the new mark."""
        with self._db.read() as tx:
            return audit.changed_since(tx, mark)

    def audit(self, since: float | None = None, owner: str | None = None) -> list[AuditEntry]:
        with self._db.read() as tx:
            return audit.entries(tx, since, owner)

    # -- MAC keys ------------------------------------------------------------

    def mac_keyring(self, owner: str, now: float | None = None) -> MacKeyring:
        """The MAC keyring (TAK of a terminal, ZAK of an acquirer link) for caching.

        Acceptability is decided at each `verify(now=...)`, so a cached keyring
        stays right as time passes; replace it after a rotation. Raises
        UnknownOwner.
        """
        with self._db.read() as tx:
            kind = owners.kind_of(tx, owner)
            rows = key_rows.select(tx, owner, MAC_TYPE[kind])
        return self._keyrings.of_rows(owner, rows, self._now(now))

    def record_uses(self, owner: str, version: int, count: int) -> None:
        """Add `count` MACs to the use counter of the owner's MAC key `version`
        (the switch flushes keyring counts now and then; `max_uses` reads them)."""
        with self._db.write() as tx:
            kind = owners.kind_of(tx, owner)
            key_rows.add_uses(tx, owner, MAC_TYPE[kind], version, count)

    # -- rotation ----------------------------------------------------------

    def rotate(
        self,
        owner: str,
        *,
        actor: str = "api",
        reason: str = "",
        grace: float | None = None,
        activate: bool = False,
        reuse_pending: bool = False,
        now: float | None = None,
    ) -> KeyChange:
        """Make the next version of every working key of `owner`, pending.

        Returns the wire payload (under the KEK/ZMK). Any older pending version is
        superseded (retired). With `reuse_pending`, an existing complete pending
        set is re-sent instead. With `activate`, the new keys become active at
        once (out-of-band delivery); otherwise call `mark_delivered` once the
        payload has been sent. The previous active keys stay acceptable for
        `grace` seconds after activation (default: policy.grace). Raises
        UnknownOwner (the id only) for an owner that is not registered: the
        switch's sign-on of an unknown terminal.
        """
        t = self._now(now)
        g = self.policy.grace if grace is None else float(grace)
        if g < 0:
            raise InvalidKey("grace must not be negative")
        with self._db.write() as tx:
            kind = owners.lock(tx, owner)
            issued, payload = self._rotation.issue(
                tx,
                owner,
                kind,
                now=t,
                grace=g,
                actor=actor,
                reason=reason,
                reuse_pending=reuse_pending,
                activate=activate,
            )
        keys = tuple(k.changed for k in issued)
        ring = self.mac_keyring(owner, t)
        if not activate:
            new_mac = next(k for k in issued if k.key_type.is_mac)
            ring = self._keyrings.after_delivery(ring, new_mac, t, g)
        change = KeyChange(owner, kind, keys, payload, activate, ring)
        log.info(
            "keys rotated owner=%s versions=%s activated=%s reason=%s",
            owner,
            change.describe(),
            activate,
            reason or "-",
        )
        return change

    def mark_delivered(
        self,
        change: KeyChange,
        *,
        actor: str = "switch",
        now: float | None = None,
    ) -> MacKeyring:
        """The payload reached the terminal/host: its keys become active, the
        previous ones retiring (accepted for their grace window). Idempotent;
        raises StaleKeyChange if a newer rotation superseded this change."""
        t = self._now(now)
        with self._db.write() as tx:
            owners.lock(tx, change.owner)
            self._rotation.deliver(tx, change.owner, change.keys, t, actor)
        return self.mac_keyring(change.owner, t)

    def retire_expired(self, now: float | None = None) -> int:
        """Move keys whose grace window is over from retiring to retired."""
        t = self._now(now)
        with self._db.write() as tx:
            return self._rotation.sweep(tx, t)

    def rotation_due(self, owner: str, now: float | None = None, margin: float = 0.0) -> bool:
        """True if the owner's active MAC key is missing, expiring within
        `margin` seconds, or has reached `max_uses`."""
        t = self._now(now)
        with self._db.read() as tx:
            row = key_rows.active(tx, owner, MAC_TYPE[owners.kind_of(tx, owner)])
        return self._rotation.due(row, t, margin)
