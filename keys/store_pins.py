"""The key store's PIN keys, sign-on keys and clear exports (part of `KeyStore`).

On the software backend these work on clear keys inside this process (the
sign-on key is derived from the clear KEK, PIN keys are unwrapped for the
software translator, a test host can take clear zone keys). On a payment HSM
the store hands out references only: the sign-on key is its own row, formed at
the console (a payShield cannot run our KDF), and every clear call is refused
with one line saying why and what to use instead.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from forecourt.keys import audit, key_rows, owners
from forecourt.keys.backend import Backend, Tx
from forecourt.keys.crypto import working_algorithm_under
from forecourt.keys.errors import UnknownKey, UnknownOwner
from forecourt.keys.mac import PreparedMac
from forecourt.keys.model import PIN_TYPE, KeyType, OwnerKind
from forecourt.keys.payshield_vault import refused
from forecourt.keys.pin import PinKey, SoftwarePinTranslator
from forecourt.keys.security_module import KeyRef as ModuleKeyRef
from forecourt.keys.sign_on import sign_on_key, sign_on_mac
from forecourt.keys.vault import SOFTWARE, KeyVault, Vault

log = logging.getLogger("forecourt.keys")


class PinAndSignOn:
    """PIN keys, sign-on keys and clear exports; mixed into `KeyStore`."""

    _db: Backend
    _vault: Vault
    _clock: Callable[[], float]

    def _now(self, now: float | None) -> float:
        return self._clock() if now is None else now

    def _software(self, what: str, instead: str) -> KeyVault:
        if isinstance(self._vault, KeyVault):
            return self._vault
        raise refused(what, instead)

    def _terminal(self, tx: Tx, terminal_id: str) -> None:
        if owners.kind_of(tx, terminal_id) is not OwnerKind.TERMINAL:
            raise UnknownOwner(terminal_id)

    def sign_on_mac(self, terminal_id: str) -> PreparedMac:
        """The terminal's sign-on key (derived from its KEK, `sign_on`), prepared to
        verify sign-on proofs; the clear KEK never leaves this call. Raises
        UnknownOwner for anything but a registered terminal. Software only."""
        vault = self._software(
            f"the sign-on key of {terminal_id} in the clear",
            "verify sign-on proofs through the security module with KeyStore.sign_on_ref",
        )
        with self._db.read() as tx:
            self._terminal(tx, terminal_id)
            algorithm, kek = vault.master(tx, terminal_id, OwnerKind.TERMINAL)
        return sign_on_mac(kek, terminal_id, algorithm)

    def sign_on_ref(self, terminal_id: str) -> ModuleKeyRef:
        """The terminal's sign-on key as a security-module reference: derived from
        the KEK (software), or its own row formed at the HSM console (payshield).
        Raises UnknownOwner for anything but a registered terminal."""
        with self._db.read() as tx:
            self._terminal(tx, terminal_id)
            if self._vault.backend != SOFTWARE:
                row = key_rows.active(tx, terminal_id, KeyType.SOK)
                if row is None:
                    raise UnknownKey(
                        f"{terminal_id} has no sign-on key: form it at the HSM console and"
                        " give it to add-terminal (--sign-on-block)"
                    )
                return self._vault.ref(row)
            vault = self._software(f"the sign-on key of {terminal_id}", "form it at the console")
            algorithm, kek = vault.master(tx, terminal_id, OwnerKind.TERMINAL)
        key = sign_on_key(kek, terminal_id, algorithm)
        return vault.key_ref(key, KeyType.TAK, working_algorithm_under(algorithm))

    # -- PIN -----------------------------------------------------------------

    def pin_key(self, owner: str) -> PinKey | None:
        """The owner's active PIN key (a terminal's TPK, an acquirer link's ZPK),
        prepared for caching; None when it has none. Raises UnknownOwner. Software only."""
        vault = self._software(
            f"the clear PIN key of {owner}", "translate PINs with KeyStore.pin_ref in the HSM"
        )
        with self._db.read() as tx:
            kind = owners.kind_of(tx, owner)
            row = key_rows.active(tx, owner, PIN_TYPE[kind])
        if row is None:
            return None
        return PinKey(vault.unwrap(row), row.algorithm, row.version)

    def pin_ref(self, owner: str) -> ModuleKeyRef | None:
        """The owner's active PIN key (TPK / ZPK) as a security-module reference,
        for the switch's PIN translation; None when it has none. Raises UnknownOwner."""
        with self._db.read() as tx:
            kind = owners.kind_of(tx, owner)
            row = key_rows.active(tx, owner, PIN_TYPE[kind])
        return None if row is None else self._vault.ref(row)

    def export_zone_keys(
        self, name: str, *, actor: str = "api", now: float | None = None
    ) -> tuple[tuple[KeyType, int, str, bytes], ...]:
        """An acquirer link's active ZAK and ZPK in clear, for a test host or simulator
        that cannot take them under the ZMK: (type, version, KCV, key) each. This is a
        key ceremony of its own, recorded in the key audit (version and KCV only).
        Raises UnknownOwner for anything but an acquirer link. Software only."""
        vault = self._software(
            f"clear zone keys of {name}",
            "a test host takes them under the ZMK from the sign-on's key exchange",
        )
        t = self._now(now)
        out: list[tuple[KeyType, int, str, bytes]] = []
        with self._db.write() as tx:
            if owners.kind_of(tx, name) is not OwnerKind.ACQUIRER:
                raise UnknownOwner(name)
            for key_type in (KeyType.ZAK, KeyType.ZPK):
                row = key_rows.active(tx, name, key_type)
                if row is None:
                    continue
                out.append((key_type, row.version, row.kcv, vault.unwrap(row)))
                audit.record(
                    tx, t, actor, "export_clear", name, key_type, new=row.ref, reason="test host"
                )
        log.info("clear zone keys exported owner=%s for a test host", name)
        return tuple(out)

    def translate_pin_block(self, terminal_id: str, acquirer: str, block: bytes, pan: str) -> bytes:
        """Field 52: re-encrypt a PIN block from the terminal's active TPK to the
        acquirer link's active ZPK; the clear keys never leave this call. Software only."""
        self._software(
            "a PIN translation in the switch",
            "translate in the HSM (SecurityModule.translate_pin with KeyStore.pin_ref)",
        )
        tpk, zpk = self.pin_key(terminal_id), self.pin_key(acquirer)
        if tpk is None or zpk is None:
            raise UnknownKey(f"no active TPK for {terminal_id!r} or ZPK for {acquirer!r}")
        return SoftwarePinTranslator().translate(block, pan, tpk, zpk)
