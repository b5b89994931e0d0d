"""The payshield vault: key rows holding a payShield's 'S' blocks under its own LMK.

Keys are generated in the HSM (A0 mode 1: the new key under the LMK, for the row,
and under the owner's KEK/ZMK, for the payload), sent again by it (A8), and
checked by it (BU); a master key (KEK, ZMK, BDK) and a terminal's sign-on key are
formed from custodians' components at the HSM's console and handed to the store
as blocks (`admit`). Nothing here ever holds a clear key: every call that would
(`insert`, `unwrap`, `master`) raises `ClearKeyRefused` with the reason and
what to use instead.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import attrs
from forecourt.keys.backend import Tx
from forecourt.keys.crypto import Algorithm, kcv_matches
from forecourt.keys.errors import ClearKeyRefused, KcvMismatch, KeyBlockInvalid, KeyNotExportable
from forecourt.keys.key_rows import KeyRow
from forecourt.keys.mac import PreparedMac
from forecourt.keys.model import KeyState, KeyType, OwnerKind
from forecourt.keys.payshield import commands as cmd
from forecourt.keys.payshield.client import BlockingClient
from forecourt.keys.payshield.wire import FieldError, Reply
from forecourt.keys.payshield_module import ERROR_REASONS, NAME, block_attributes
from forecourt.keys.security_module import KeyRef as ModuleKeyRef
from forecourt.keys.security_module import ModuleError
from forecourt.keys.vault import GeneratedKey

T = TypeVar("T")

# the TR-31 usage a block formed at the console must carry for its row
CONSOLE_USAGES: dict[KeyType, tuple[str, ...]] = {
    KeyType.KEK: ("K0",),
    KeyType.ZMK: ("K0",),
    KeyType.BDK: ("B0",),
    KeyType.SOK: ("M3", "M6"),
}
_NOT_EXPORTABLE = "29"


def refused(what: str, instead: str) -> ClearKeyRefused:
    return ClearKeyRefused(
        f"{what}: this key store is on a payment HSM (backend payshield), whose keys never"
        f" leave it in the clear; {instead}"
    )


@attrs.frozen
class PayShieldVault:
    """`Vault` on a payShield reached with a blocking client (the store is synchronous).

    `stamp` is called with the HSM's LMK check (NC) before the first command that
    reaches it: a store opened while the HSM is down (a switch starting, which
    answers 909 until the HSM is back) is still never used against another LMK."""

    client: BlockingClient
    stamp: Callable[[str], None] | None = None
    _checked: list[bool] = attrs.field(factory=list, repr=False)
    backend = NAME

    def close(self) -> None:
        self.client.close()

    def check_stamp(self) -> None:
        """NC, and the store's stamp against it, once per vault."""
        if self.stamp is not None and not self._checked:
            reply = self.client.call("NC", b"")
            if not reply.ok:
                reason = ERROR_REASONS.get(reply.error, "error code not in the manual's list")
                raise ModuleError("diagnostics (NC)", reply.error, reason)
            self.stamp(self._decoded("diagnostics", cmd.nd_reply, reply.fields).lmk_check)
            self._checked.append(True)

    def _ok(self, operation: str, command: str, fields: bytes) -> Reply:
        self.check_stamp()
        reply = self.client.call(command, fields)
        if not reply.ok:
            reason = ERROR_REASONS.get(reply.error, "error code not in the manual's list")
            raise ModuleError(f"{operation} ({command})", reply.error, reason)
        return reply

    @staticmethod
    def _decoded(operation: str, decode: Callable[..., T], *args: object) -> T:
        try:
            return decode(*args)
        except FieldError as exc:
            raise ModuleError(
                operation, "reply", f"the HSM's reply does not parse: {exc}"
            ) from None

    # -- what the store asks -----------------------------------------------------------

    def ref(self, row: KeyRow) -> ModuleKeyRef:
        return row.key_ref(NAME)

    def generate_under(
        self, master: KeyRow, key_type: KeyType, algorithm: Algorithm
    ) -> GeneratedKey:
        """A0 mode 1: the key under the LMK and under the KEK/ZMK, and its KCV."""
        request = cmd.a0_request(block_attributes(key_type, algorithm), master.key_block)
        reply = self._ok("generate key", "A0", request)
        key = self._decoded("generate key", cmd.a1_reply, reply.fields, True)
        if key.under_zmk is None:
            raise ModuleError("generate key (A0)", "reply", "no key under the KEK/ZMK in the reply")
        return GeneratedKey(key.under_lmk, key.kcv, key.under_zmk[1:])

    def export_under(self, master: KeyRow, row: KeyRow) -> str:
        """A8: a pending key under the KEK/ZMK again; refused for a key whose block
        says it stays in the HSM (error 29)."""
        try:
            reply = self._ok("export key", "A8", cmd.a8_request(master.key_block, row.key_block))
        except ModuleError as exc:
            if exc.code != _NOT_EXPORTABLE:
                raise
            raise KeyNotExportable(
                f"{row.id} (KCV {row.kcv}) is not exportable from the HSM (error 29: its key"
                " block's exportability forbids it): rotate without reusing the pending keys"
            ) from None
        block, _ = self._decoded("export key", cmd.a9_reply, reply.fields)
        return block[1:]

    def check_value(self, block: str) -> str:
        """BU: the KCV of the key a block holds, computed by the HSM."""
        reply = self._ok("key check value", "BU", cmd.bu_request(block))
        return self._decoded("key check value", cmd.bv_reply, reply.fields)

    def admit(self, block: str, key_type: KeyType, algorithm: Algorithm, expected_kcv: str) -> str:
        """A block formed at the console, checked before it becomes a row: an 'S'
        block of the right usage and algorithm, opening under the HSM's LMK (BU),
        holding the key whose KCV the custodians recorded. Returns the KCV."""
        what = f"the {key_type.value} block"
        text = block.strip()
        if not text.startswith("S") or len(text) < 17 or not text.isascii():
            raise KeyBlockInvalid(f"{what} must be the 'S' key block the HSM console printed")
        usage, family = text[6:8], text[8]
        if usage not in CONSOLE_USAGES[key_type]:
            raise KeyBlockInvalid(
                f"{what} has key usage {usage}; a {key_type.value} is formed with usage"
                f" {' or '.join(CONSOLE_USAGES[key_type])} (form-key --usage)"
            )
        if family != ("A" if algorithm.is_aes else "T"):
            raise KeyBlockInvalid(f"{what} does not hold a {algorithm.value} key")
        try:
            check = self.check_value(text)
        except ModuleError as exc:
            if exc.code in ("10", "15"):
                raise KeyBlockInvalid(
                    f"{what} does not open under this HSM's LMK (error {exc.code}):"
                    " form it at the console of the HSM the switch uses"
                ) from None
            raise
        if not kcv_matches(expected_kcv, check):
            raise KcvMismatch(
                f"{what} does not match KCV {expected_kcv.strip().upper()}; nothing stored"
            )
        return check

    def prepared_mac(self, row: KeyRow) -> PreparedMac | None:
        return None

    # -- what a payShield store never does -----------------------------------------

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
        raise refused(
            f"a clear {key_type.value} for {owner}",
            "form it at the HSM console (forecourt sim hsm form-key) and give its block",
        )

    def unwrap(self, row: KeyRow) -> bytes:
        raise refused(
            f"the clear {row.key_type.value} of {row.owner}",
            "use its security-module reference (KeyStore.pin_ref, mac_keyring, sign_on_ref)",
        )

    def master(self, tx: Tx, owner: str, kind: OwnerKind) -> tuple[Algorithm, bytes]:
        raise refused(
            f"the clear master key of {owner}", "the HSM wraps working keys under it (A0, A8)"
        )
