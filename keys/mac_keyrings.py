"""MAC keyrings out of the key rows, and the keyring a rotation predicts.

The switch caches one keyring per terminal (TAK) and acquirer link (ZAK). It
is built here from the stored rows, or, for a key change not yet delivered,
from the keyring of today plus the new key, so the switch can hold the next
keyring before the store has activated it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import attrs
from forecourt.keys.key_change import IssuedKey
from forecourt.keys.key_rows import KeyRow
from forecourt.keys.keyring import MacKey, MacKeyring, _Uses
from forecourt.keys.model import KeyPolicy, KeyState
from forecourt.keys.vault import Vault

# retired MAC keys kept in a keyring to diagnose key sync: only those whose block
# was not erased yet (a store opened before a full sweep); erased ones cannot MAC
RECENT_RETIRED = 2


@attrs.frozen
class MacKeyrings:
    """Makes keyrings under one vault, policy and clock (those of the store). On a
    payment HSM each MacKey carries its reference only (`mac=None`): the switch
    MACs through the security module."""

    vault: Vault
    policy: KeyPolicy
    clock: Callable[[], float]

    def _key(self, row: KeyRow) -> MacKey:
        return MacKey(
            version=row.version,
            kcv=row.kcv,
            state=row.state,
            mac=self.vault.prepared_mac(row),
            activated_at=row.activated_at,
            expires_at=row.expires_at,
            retiring_until=row.retiring_until,
            ref=self.vault.ref(row),
        )

    def of_rows(self, owner: str, rows: Sequence[KeyRow], now: float) -> MacKeyring:
        """The keyring of the owner's MAC key rows (all versions, oldest first)."""
        current: MacKey | None = None
        grace: list[MacKey] = []
        stale: list[MacKey] = []
        retired = [r for r in rows if r.state is KeyState.RETIRED and not r.erased]
        retired = retired[-RECENT_RETIRED:]
        uses = 0
        for r in rows:
            if r.state is KeyState.ACTIVE:
                current = self._key(r)
                uses = r.uses
            elif r.state is KeyState.RETIRING:
                k = self._key(r)
                (grace if k.acceptable(now) else stale).append(k)
            elif r.state is KeyState.PENDING or r in retired:
                stale.append(self._key(r))
        grace.sort(key=lambda k: -k.version)
        return MacKeyring(
            owner=owner,
            current=current,
            grace=tuple(grace),
            stale=tuple(stale),
            max_uses=self.policy.max_uses,
            uses=_Uses(uses),
            clock=self.clock,
        )

    def after_delivery(
        self, old: MacKeyring, new_mac: IssuedKey, now: float, grace: float
    ) -> MacKeyring:
        """`old` as it will be once `new_mac` is active: the current key moves
        into grace for `grace` seconds, as `KeyStore.mark_delivered` will record."""
        new = MacKey(
            version=new_mac.version,
            kcv=new_mac.kcv,
            state=KeyState.ACTIVE,
            mac=new_mac.mac,
            activated_at=now,
            expires_at=now + self.policy.max_age,
            ref=new_mac.ref,
        )
        graces = list(old.grace)
        if old.current is not None:
            graces.insert(
                0,
                attrs.evolve(old.current, state=KeyState.RETIRING, retiring_until=now + grace),
            )
        return MacKeyring(
            owner=old.owner,
            current=new,
            grace=tuple(graces[: self.policy.grace_versions]),
            stale=tuple(k for k in old.stale if k.version != new.version),
            max_uses=self.policy.max_uses,
            clock=self.clock,
        )
