"""Working-key rotation: pending -> active -> retiring (grace window) -> retired.

Everything here runs inside one write transaction that holds the owner's lock,
so a rotation, a delivery and a sweep of the same owner never interleave.
Every step writes the audit trail; the policy (`KeyPolicy`) decides expiry,
use limits and how many replaced versions stay in grace. Retiring a key erases
its block (audit action `erase`): a retired PIN or data key kept in the
store, and so in every backup, would decrypt recorded traffic for ever.
"""

from __future__ import annotations

import logging

import attrs
from forecourt.keys import audit, key_rows
from forecourt.keys.backend import Tx
from forecourt.keys.crypto import Algorithm, working_algorithm_under
from forecourt.keys.errors import StaleKeyChange, UnknownKey
from forecourt.keys.exchange import PayloadEntry, encode_payload
from forecourt.keys.key_change import ChangedKey, IssuedKey
from forecourt.keys.key_rows import KeyRow
from forecourt.keys.model import WORKING_TYPES, KeyPolicy, KeyState, KeyType, OwnerKind
from forecourt.keys.security_module import KeyRef as ModuleKeyRef
from forecourt.keys.vault import Vault

log = logging.getLogger("forecourt.keys")


@attrs.frozen
class Rotation:
    """The rotation rules of one store (its vault and policy). The vault makes
    each key: in this process under the software LMK, or in the payment HSM (A0
    mode 1 under the owner's KEK/ZMK; A8 to send a pending key again)."""

    vault: Vault
    policy: KeyPolicy

    def issue(
        self,
        tx: Tx,
        owner: str,
        kind: OwnerKind,
        *,
        now: float,
        grace: float,
        actor: str,
        reason: str,
        reuse_pending: bool,
        activate: bool,
    ) -> tuple[tuple[IssuedKey, ...], str]:
        """The next version of each working key, pending (or active with
        `activate`), and the payload that carries them under the KEK/ZMK."""
        master = key_rows.master_row(tx, owner, kind)
        self.sweep(tx, now, owner)
        types = WORKING_TYPES[kind]
        pending = {kt: key_rows.select(tx, owner, kt, (KeyState.PENDING,)) for kt in types}
        if reuse_pending and all(pending[kt] for kt in types):
            issued = tuple(self._reissue(master, pending[kt][0]) for kt in types)
        else:
            issued = tuple(
                self._create(tx, owner, kt, pending[kt], master, now, grace, actor, reason)
                for kt in types
            )
        if activate:
            for new in issued:
                row = key_rows.select(tx, owner, new.key_type, (KeyState.PENDING,))[0]
                self.activate(tx, row, now, actor, reason or "activated at rotation")
        entries = [PayloadEntry(k.key_type, k.version, k.kcv, k.wire) for k in issued]
        return issued, encode_payload(entries)

    def _reissue(self, master: KeyRow, row: KeyRow) -> IssuedKey:
        """A pending key sent again (its first delivery may have been lost)."""
        wire = self.vault.export_under(master, row)
        mac = self.vault.prepared_mac(row) if row.key_type.is_mac else None
        return IssuedKey(
            row.key_type, row.version, row.algorithm, row.kcv, wire, self.vault.ref(row), mac
        )

    def _create(
        self,
        tx: Tx,
        owner: str,
        key_type: KeyType,
        superseded: list[KeyRow],
        master: KeyRow,
        now: float,
        grace: float,
        actor: str,
        reason: str,
    ) -> IssuedKey:
        """A fresh pending key; pending ones not yet delivered are superseded."""
        for p in superseded:
            self.retire(tx, p, now, "supersede", "replaced before delivery", actor=actor)
        previous = key_rows.active(tx, owner, key_type)
        algorithm: Algorithm = (
            previous.algorithm if previous else working_algorithm_under(master.algorithm)
        )
        version = key_rows.next_version(tx, owner, key_type)
        new = self.vault.generate_under(master, key_type, algorithm)
        check = new.kcv
        key_rows.insert_row(
            tx, owner, key_type, algorithm, version, new.block, check, KeyState.PENDING, now, grace
        )
        audit.record(
            tx,
            now,
            actor,
            "rotate",
            owner,
            key_type,
            old=previous.ref if previous else None,
            new=(version, check),
            reason=reason,
        )
        ref = ModuleKeyRef(key_type, algorithm, check, new.block, self.vault.backend)
        return IssuedKey(key_type, version, algorithm, check, new.wire, ref, new.mac)

    def retire(
        self, tx: Tx, row: KeyRow, now: float, action: str, reason: str, *, actor: str
    ) -> None:
        """`row` is retired and its block erased (two audit rows: `action`, `erase`)."""
        key_rows.set_retired(tx, row, now)
        audit.record(tx, now, actor, action, row.owner, row.key_type, old=row.ref, reason=reason)
        self._erased(tx, row, now, actor)

    def _erased(self, tx: Tx, row: KeyRow, now: float, actor: str) -> None:
        audit.record(
            tx, now, actor, "erase", row.owner, row.key_type, old=row.ref, reason="key block erased"
        )
        log.info(
            "key block erased owner=%s type=%s version=%d kcv=%s",
            row.owner,
            row.key_type.value,
            row.version,
            row.kcv,
        )

    def sweep(self, tx: Tx, now: float, owner: str | None = None) -> int:
        """Retire the keys whose grace window is over (of one owner, or all);
        a full sweep also erases blocks left by retirements before erasing existed."""
        rows = key_rows.grace_over(tx, now, owner)
        for r in rows:
            self.retire(tx, r, now, "retire", "grace window over", actor="system")
        if owner is None:
            for old in key_rows.retired_with_block(tx):
                key_rows.erase(tx, old)
                self._erased(tx, old, now, "system")
        return len(rows)

    def activate(self, tx: Tx, row: KeyRow, now: float, actor: str, reason: str) -> None:
        """`row` becomes the active key; the one it replaces goes into grace,
        and retiring keys beyond `grace_versions` retire at once."""
        olds = key_rows.select(tx, row.owner, row.key_type, (KeyState.ACTIVE,))
        retiring = key_rows.select(tx, row.owner, row.key_type, (KeyState.RETIRING,))
        keep = max(0, self.policy.grace_versions - len(olds))
        for r in retiring[: max(0, len(retiring) - keep)]:
            self.retire(tx, r, now, "retire", "replaced twice", actor=actor)
        for old in olds:
            key_rows.set_retiring(tx, old, now + row.grace_seconds)
        key_rows.set_active(tx, row, now, now + self.policy.max_age)
        old_ref = olds[0].ref if olds else None
        audit.record(
            tx,
            now,
            actor,
            "activate",
            row.owner,
            row.key_type,
            old=old_ref,
            new=row.ref,
            reason=reason,
        )
        log.info(
            "key activated owner=%s type=%s version=%d kcv=%s previous=%s",
            row.owner,
            row.key_type.value,
            row.version,
            row.kcv,
            "none" if old_ref is None else f"v{old_ref[0]}/{old_ref[1]}",
        )

    def deliver(
        self, tx: Tx, owner: str, keys: tuple[ChangedKey, ...], now: float, actor: str
    ) -> None:
        """Activate the delivered keys still pending; already active is fine
        (idempotent), anything else means a newer rotation replaced them."""
        todo: list[KeyRow] = []
        for c in keys:
            rows = [r for r in key_rows.select(tx, owner, c.key_type) if r.version == c.version]
            if not rows:
                raise UnknownKey(f"{owner} has no {c.key_type.value} v{c.version}")
            row = rows[0]
            if row.state is KeyState.PENDING:
                todo.append(row)
            elif row.state is not KeyState.ACTIVE:
                raise StaleKeyChange(
                    f"{owner} {c.key_type.value} v{c.version} is {row.state.value}:"
                    " a newer key change replaced it"
                )
        for row in todo:
            self.activate(tx, row, now, actor, "delivered")
        self.sweep(tx, now, owner)

    def due(self, mac_row: KeyRow | None, now: float, margin: float) -> bool:
        """True if the active MAC key is missing, expiring within `margin`
        seconds, or has reached `max_uses`."""
        if mac_row is None:
            return True
        if self.policy.max_uses is not None and mac_row.uses >= self.policy.max_uses:
            return True
        return mac_row.expires_at is not None and now + margin >= mac_row.expires_at
