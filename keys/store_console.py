"""Master keys formed at a payment HSM's console, registered as blocks (part of `KeyStore`).

A payShield forms a KEK, ZMK or BDK from its custodians' components at its own
console, never through the host: the store takes the 'S' block it printed and
the KCV the custodians recorded, has the HSM check them (BU), and makes the
owner's first working keys in the HSM under that block (A0 mode 1). A terminal's
sign-on proof key comes the same way (its own row, `KeyType.SOK`): the terminal
derives it from its KEK as always, the HSM holds it formed from components the
KEK ceremony printed (`keys/ceremony_device.py`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from forecourt.keys import audit, key_rows, owners, provisioning
from forecourt.keys.backend import Backend
from forecourt.keys.crypto import Algorithm, Family, working_algorithm_under
from forecourt.keys.errors import InvalidKey
from forecourt.keys.model import (
    AcquirerInfo,
    ConsoleTerminal,
    KeyPolicy,
    KeyState,
    KeyType,
    OwnerKind,
)
from forecourt.keys.payshield_vault import PayShieldVault
from forecourt.keys.provisioning import ConsoleKey
from forecourt.keys.vault import Vault

log = logging.getLogger("forecourt.keys")


class ConsoleProvisioning:
    """Terminals and acquirer links from console-formed blocks; mixed into `KeyStore`."""

    _db: Backend
    _vault: Vault
    _clock: Callable[[], float]
    policy: KeyPolicy

    def _device(self, what: str) -> PayShieldVault:
        if isinstance(self._vault, PayShieldVault):
            return self._vault
        raise InvalidKey(
            f"{what}: a key block from an HSM console goes into a payshield store; this"
            " store is software: give the components instead (--component-file)"
        )

    def add_terminal_blocks(
        self,
        terminal_id: str,
        family: Family | str,
        kek_block: str,
        kek_kcv: str,
        sign_on_block: str,
        sign_on_kcv: str,
        *,
        actor: str = "api",
        now: float | None = None,
    ) -> ConsoleTerminal:
        """Register a terminal from its KEK and sign-on key as formed at the console;
        its TAK/TPK/TDK v1 are generated in the HSM under the KEK."""
        vault = self._device("--kek-block")
        owners.check_terminal_id(terminal_id)
        algorithm = Family(family).kek_algorithm
        sign_on_algorithm = working_algorithm_under(algorithm)
        kek = ConsoleKey(
            algorithm, kek_block, vault.admit(kek_block, KeyType.KEK, algorithm, kek_kcv)
        )
        sign_on = ConsoleKey(
            sign_on_algorithm,
            sign_on_block,
            vault.admit(sign_on_block, KeyType.SOK, sign_on_algorithm, sign_on_kcv),
        )
        t = self._clock() if now is None else now
        with self._db.write() as tx:
            payload = provisioning.register_block(
                tx, vault, self.policy, terminal_id, OwnerKind.TERMINAL, kek, t, actor
            )
            key_rows.insert_row(
                tx, terminal_id, KeyType.SOK, sign_on.algorithm, 1, sign_on.block, sign_on.kcv,
                KeyState.ACTIVE, t, 0.0,
            )  # fmt: skip
            audit.record(tx, t, actor, "create", terminal_id, KeyType.SOK, new=(1, sign_on.kcv))
        log.info(
            "terminal registered from console blocks terminal_id=%s kek_kcv=%s sign_on_kcv=%s",
            terminal_id,
            kek.kcv,
            sign_on.kcv,
        )
        return ConsoleTerminal(terminal_id, algorithm, kek.kcv, sign_on.kcv, payload)

    def add_acquirer_blocks(
        self,
        name: str,
        algorithm: Algorithm,
        zmk_block: str,
        zmk_kcv: str,
        *,
        actor: str = "api",
        now: float | None = None,
    ) -> AcquirerInfo:
        """Register an acquirer link from its ZMK as formed at the console; ZAK/ZPK
        v1 are generated in the HSM under it."""
        vault = self._device("--zmk-block")
        owners.check_acquirer_name(name)
        zmk = ConsoleKey(
            algorithm, zmk_block, vault.admit(zmk_block, KeyType.ZMK, algorithm, zmk_kcv)
        )
        t = self._clock() if now is None else now
        with self._db.write() as tx:
            payload = provisioning.register_block(
                tx, vault, self.policy, name, OwnerKind.ACQUIRER, zmk, t, actor
            )
        log.info("acquirer registered from a console block name=%s zmk_kcv=%s", name, zmk.kcv)
        return AcquirerInfo(name=name, algorithm=algorithm, zmk_kcv=zmk.kcv, payload=payload)
