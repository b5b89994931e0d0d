"""The security module: every operation on a key, behind one small async protocol.

A PCI PIN assessor wants PIN blocks translated, and keys used, inside a secure
cryptographic device, never in the switch's memory. So the switch, the SAF
sender and the CLIs hold keys only as *references* (`KeyRef`): a key block under
the module's LMK (the software LMK, a payShield's key-block LMK) or a token
object's label (PKCS#11). What a reference holds is opaque to its holder; only
the backend that made it can use it, and a reference never carries a clear key.

Backends (`[keys] backend`, docs/hsm.md):
- `software`: today's in-process cryptography under the software LMK (the default,
  and what the demo uses);
- `payshield`: a payment HSM over its host-command protocol;
- `pkcs11`: a PKCS#11 token (SoftHSM2 in the tests).

An operation a backend cannot do raises `NotSupportedByModule` with a line saying
which operation and which backend; a device's own error raises `ModuleError`
carrying the device's error code, which the flows turn into an action code.
"""

from __future__ import annotations

import enum
from typing import Protocol

import attrs
from forecourt.keys.crypto import Algorithm
from forecourt.keys.errors import KeysError
from forecourt.keys.mac import MacAlgorithm
from forecourt.keys.model import KeyType

__all__ = [
    "DukptKeyUsage",
    "ExportedKey",
    "KeyRef",
    "ModuleError",
    "ModuleStatus",
    "ModuleUnavailable",
    "NotSupportedByModule",
    "PinBlockFormat",
    "SecurityModule",
]


class ModuleError(KeysError):
    """The security module refused an operation. `code` is the device's own error
    code (payShield's two digits, a PKCS#11 CKR name, "software"); the message
    names the operation and never quotes a key, PIN block or data."""

    def __init__(self, operation: str, code: str, reason: str) -> None:
        super().__init__(f"security module refused {operation}: {reason} (error {code})")
        self.operation = operation
        self.code = code


class ModuleUnavailable(ModuleError):
    """The module cannot be reached in time (connection refused, deadline passed)."""


class NotSupportedByModule(ModuleError):
    """The configured backend cannot do this operation at all (e.g. PIN translation
    on PKCS#11): a configuration matter, not a transient failure."""


class PinBlockFormat(enum.Enum):
    """ISO 9564-1 PIN block formats the switch handles."""

    ISO0 = "0"  # TDES keys
    ISO4 = "4"  # AES keys


class DukptKeyUsage(enum.Enum):
    """ANSI X9.24-3-2017 key usage indicators of the derivation data (table 2)."""

    PIN_ENCRYPTION = 0x1000
    MAC_GENERATION = 0x2000
    MAC_VERIFICATION = 0x2001
    MAC_BOTH_WAYS = 0x2002
    DATA_ENCRYPTION_ENCRYPT = 0x3000
    DATA_ENCRYPTION_DECRYPT = 0x3001
    DATA_ENCRYPTION_BOTH_WAYS = 0x3002


@attrs.frozen(repr=False)
class KeyRef:
    """A key as the switch holds it: what it is for, its algorithm and check value,
    and `handle`, which only the backend that made it can open (a key block under
    the module's LMK, or a token object's label). Never a clear key."""

    key_type: KeyType
    algorithm: Algorithm
    kcv: str
    handle: str = attrs.field(repr=False)
    backend: str = "software"

    def __repr__(self) -> str:
        return f"KeyRef({self.key_type.value}, {self.algorithm.value}, kcv={self.kcv})"


@attrs.frozen(repr=False)
class ExportedKey:
    """A key encrypted under a ZMK/KEK for another party (a key block, or a TDES
    cryptogram in variant form where the party needs one), with its check value."""

    cryptogram: str = attrs.field(repr=False)
    kcv: str

    def __repr__(self) -> str:
        return f"ExportedKey(kcv={self.kcv})"


@attrs.frozen
class ModuleStatus:
    """What a diagnostics call reports (payShield NC): for /healthz and the metrics."""

    backend: str
    lmk_kcv: str
    firmware: str = ""


class SecurityModule(Protocol):
    """The operations a switch needs from a security module (async: a device answers
    over a socket; deadlines are the caller's cancel scopes)."""

    name: str

    async def generate_key(self, key_type: KeyType, algorithm: Algorithm) -> KeyRef:
        """A new random key of `key_type` (payShield A0)."""
        ...

    async def import_key(
        self, zmk: KeyRef, cryptogram: str, key_type: KeyType, algorithm: Algorithm
    ) -> KeyRef:
        """A key another party sent encrypted under `zmk`, taken under the module's
        LMK (payShield A6)."""
        ...

    async def export_key(self, zmk: KeyRef, key: KeyRef) -> ExportedKey:
        """`key` encrypted under `zmk` for another party (payShield A8)."""
        ...

    async def kcv(self, key: KeyRef) -> str:
        """The key's check value, computed in the module (payShield BU)."""
        ...

    async def generate_mac(self, key: KeyRef, algorithm: MacAlgorithm, data: bytes) -> bytes:
        """The MAC of `data` (retail MAC ISO 9797-1 alg. 3, or AES-CMAC; payShield M6)."""
        ...

    async def verify_mac(
        self, key: KeyRef, algorithm: MacAlgorithm, data: bytes, mac: bytes
    ) -> bool:
        """Whether `mac` is the MAC of `data` (payShield M8)."""
        ...

    async def translate_pin(
        self,
        source: KeyRef,
        destination: KeyRef,
        pin_block: bytes,
        pan: str,
        source_format: PinBlockFormat,
        destination_format: PinBlockFormat,
    ) -> bytes:
        """A PIN block from under `source` (a TPK or ZPK) to under `destination` (a
        ZPK), the clear PIN never leaving the module (payShield CA, CC)."""
        ...

    async def translate_dukpt_pin(
        self,
        bdk: KeyRef,
        ksn: bytes,
        destination: KeyRef,
        pin_block: bytes,
        pan: str,
        destination_format: PinBlockFormat,
    ) -> bytes:
        """A PIN block encrypted under the DUKPT PIN key `ksn` derives from `bdk`,
        translated to under `destination` (payShield G0)."""
        ...

    async def dukpt_mac(self, bdk: KeyRef, ksn: bytes, usage: DukptKeyUsage, data: bytes) -> bytes:
        """The MAC of `data` under the DUKPT MAC key `ksn` derives from `bdk` for
        `usage` (AES-CMAC for AES DUKPT, the retail MAC for TDES DUKPT)."""
        ...

    async def dukpt_initial_key(
        self, bdk: KeyRef, initial_key_id: bytes, kek: KeyRef
    ) -> ExportedKey:
        """The initial key for a terminal with `initial_key_id`, encrypted under `kek`
        for injection into its PIN pad."""
        ...

    async def diagnostics(self) -> ModuleStatus:
        """The module's LMK check value and firmware (payShield NC)."""
        ...

    async def echo(self, data: bytes) -> bytes:
        """`data` back from the module, to prove the link (payShield B2)."""
        ...
