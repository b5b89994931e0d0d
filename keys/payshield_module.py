"""The `payshield` backend: `SecurityModule` over a payShield's host commands.

The switch holds only `KeyRef`s whose handle is the key block under the HSM's LMK
('S' + block) and the cryptograms the HSM returns: no clear key and no clear PIN
block is ever in this process (tests/keys/test_payshield_no_clear.py proves it
from what was sent and kept). The connection side is `payshield_pool`; this
module turns each operation into its command (`payshield.commands`) and each
error code into a typed error: `ModuleError` carrying the HSM's two characters,
`ModuleUnavailable` when the HSM cannot answer in time (docs/hsm.md "Error codes").
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import attrs
from forecourt.keys.crypto import Algorithm
from forecourt.keys.mac import MacAlgorithm
from forecourt.keys.model import KeyType
from forecourt.keys.payshield import commands as cmd
from forecourt.keys.payshield.wire import FieldError, Reply
from forecourt.keys.payshield_pool import Connect, ConnectionPool, open_tcp
from forecourt.keys.security_module import (
    DukptKeyUsage,
    ExportedKey,
    KeyRef,
    ModuleError,
    ModuleStatus,
    NotSupportedByModule,
    PinBlockFormat,
)

NAME = "payshield"
T = TypeVar("T")

# What the manual says each error code means (docs/hsm.md "Error codes").
ERROR_REASONS: dict[str, str] = {
    "01": "verification failure",
    "02": "key inappropriate length for algorithm",
    "04": "invalid key type code",
    "05": "invalid key length flag",
    "10": "source key parity error (key block does not authenticate)",
    "11": "destination key parity error (key block does not authenticate)",
    "12": "contents of user storage not available",
    "13": "master key (LMK) parity error",
    "15": "invalid input data",
    "20": "PIN block does not contain valid values",
    "22": "invalid account number",
    "23": "invalid PIN block format code",
    "24": "PIN is fewer than 4 or more than 12 digits",
    "26": "invalid key scheme",
    "27": "incompatible key length",
    "28": "invalid key type",
    "29": "key function not permitted",
    "41": "internal hardware/software error",
    "42": "DES failure",
    "68": "command has been disabled",
    "80": "data length error",
}

_FORMATS = {PinBlockFormat.ISO0: cmd.PIN_FORMAT_ISO0, PinBlockFormat.ISO4: cmd.PIN_FORMAT_ISO4}


@attrs.frozen
class PayShieldSettings:
    """`[keys.payshield]` (docs/configuration.md)."""

    host: str = "127.0.0.1"
    port: int = 1500
    header_length: int = 4
    connections: int = 4
    in_flight: int = 32
    timeout_s: float = 2.0


def block_attributes(key_type: KeyType, algorithm: Algorithm) -> cmd.KeyBlockAttributes:
    """A key type's key-block header: TR-31 usage and mode of use (as keys/tr31.py
    stores the software backend's keys)."""
    if key_type in (KeyType.ZPK, KeyType.TPK):
        return cmd.KeyBlockAttributes("P0", algorithm, "B")
    if key_type.is_mac:
        return cmd.KeyBlockAttributes("M6" if algorithm.is_aes else "M3", algorithm, "C")
    if key_type.is_master:
        return cmd.KeyBlockAttributes("K0", algorithm, "B")
    return cmd.KeyBlockAttributes("D0", algorithm, "B")


class PayShieldModule:
    """`SecurityModule` on a payShield. Close it with `aclose()` (or `async with`)."""

    name = NAME

    def __init__(self, settings: PayShieldSettings, connect: Connect = open_tcp) -> None:
        self.settings = settings
        self.pool = ConnectionPool(
            settings.host,
            settings.port,
            header_length=settings.header_length,
            connections=settings.connections,
            in_flight=settings.in_flight,
            timeout_s=settings.timeout_s,
            connect=connect,
        )
        self.last_diagnostics: ModuleStatus | None = None

    async def __aenter__(self) -> PayShieldModule:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self.pool.aclose()

    async def _ok(self, operation: str, command: str, fields: bytes) -> Reply:
        reply = await self.pool.call(command, fields)
        if not reply.ok:
            reason = ERROR_REASONS.get(reply.error, "error code not in the manual's list")
            raise ModuleError(f"{operation} ({command})", reply.error, reason)
        return reply

    def _ref(self, key_type: KeyType, algorithm: Algorithm, block: str, kcv: str) -> KeyRef:
        return KeyRef(key_type, algorithm, kcv, block, backend=NAME)

    @staticmethod
    def _decoded(operation: str, decode: Callable[..., T], *args: object) -> T:
        try:
            return decode(*args)
        except FieldError as exc:
            raise ModuleError(
                operation, "reply", f"the HSM's reply does not parse: {exc}"
            ) from None

    # -- keys ------------------------------------------------------------------------

    async def generate_key(self, key_type: KeyType, algorithm: Algorithm) -> KeyRef:
        reply = await self._ok(
            "generate key", "A0", cmd.a0_request(block_attributes(key_type, algorithm))
        )
        key = self._decoded("generate key", cmd.a1_reply, reply.fields, False)
        return self._ref(key_type, algorithm, key.under_lmk, key.kcv)

    async def generate_key_under(
        self, key_type: KeyType, algorithm: Algorithm, zmk: KeyRef
    ) -> tuple[KeyRef, ExportedKey]:
        """A new key and the same key under `zmk`, in one A0 (mode 1)."""
        attributes = block_attributes(key_type, algorithm)
        reply = await self._ok("generate key", "A0", cmd.a0_request(attributes, zmk.handle))
        key = self._decoded("generate key", cmd.a1_reply, reply.fields, True)
        if key.under_zmk is None:
            raise ModuleError("generate key (A0)", "reply", "no key under the ZMK in the reply")
        exported = ExportedKey(key.under_zmk[1:], key.kcv)
        return self._ref(key_type, algorithm, key.under_lmk, key.kcv), exported

    async def import_key(
        self, zmk: KeyRef, cryptogram: str, key_type: KeyType, algorithm: Algorithm
    ) -> KeyRef:
        """`cryptogram` is the TR-31 block under the ZMK (without the 'S')."""
        reply = await self._ok("import key", "A6", cmd.a6_request(zmk.handle, "S" + cryptogram))
        block, kcv = self._decoded("import key", cmd.a7_reply, reply.fields)
        return self._ref(key_type, algorithm, block, kcv)

    async def export_key(self, zmk: KeyRef, key: KeyRef) -> ExportedKey:
        reply = await self._ok("export key", "A8", cmd.a8_request(zmk.handle, key.handle))
        block, kcv = self._decoded("export key", cmd.a9_reply, reply.fields)
        return ExportedKey(block[1:], kcv)

    async def kcv(self, key: KeyRef) -> str:
        reply = await self._ok("key check value", "BU", cmd.bu_request(key.handle))
        return self._decoded("key check value", cmd.bv_reply, reply.fields)

    # -- MACs ------------------------------------------------------------------------

    @staticmethod
    def _mac_flag(algorithm: MacAlgorithm) -> str:
        return (
            cmd.MAC_ALGORITHM_RETAIL if algorithm is MacAlgorithm.RETAIL else cmd.MAC_ALGORITHM_CMAC
        )

    async def generate_mac(self, key: KeyRef, algorithm: MacAlgorithm, data: bytes) -> bytes:
        request = cmd.m6_request(self._mac_flag(algorithm), key.handle, data)
        reply = await self._ok("generate MAC", "M6", request)
        return self._decoded("generate MAC", cmd.m7_reply, reply.fields)

    async def verify_mac(
        self, key: KeyRef, algorithm: MacAlgorithm, data: bytes, mac: bytes
    ) -> bool:
        if len(mac) != 8:
            return False
        request = cmd.m8_request(self._mac_flag(algorithm), key.handle, data, mac)
        reply = await self.pool.call("M8", request)
        if reply.error == "01":
            return False
        if not reply.ok:
            reason = ERROR_REASONS.get(reply.error, "error code not in the manual's list")
            raise ModuleError("verify MAC (M8)", reply.error, reason)
        return True

    # -- PINs --------------------------------------------------------------------------

    async def translate_pin(
        self,
        source: KeyRef,
        destination: KeyRef,
        pin_block: bytes,
        pan: str,
        source_format: PinBlockFormat,
        destination_format: PinBlockFormat,
    ) -> bytes:
        command = "CA" if source.key_type is KeyType.TPK else "CC"
        try:
            request = cmd.ca_request(
                source.handle,
                destination.handle,
                pin_block,
                _FORMATS[source_format],
                _FORMATS[destination_format],
                pan,
            )
        except FieldError:
            raise ModuleError("translate PIN", "15", "the account number is not a PAN") from None
        reply = await self._ok("translate PIN", command, request)
        name = "CB" if command == "CA" else "CD"
        return self._decoded("translate PIN", cmd.pin_reply, reply.fields, name).pin_block

    async def translate_dukpt_pin(
        self,
        bdk: KeyRef,
        ksn: bytes,
        destination: KeyRef,
        pin_block: bytes,
        pan: str,
        destination_format: PinBlockFormat,
    ) -> bytes:
        """G0 (TDES DUKPT); AES DUKPT PIN translation is a different command family on
        a payShield and is not in this backend."""
        if bdk.algorithm is not Algorithm.TDES2 or len(ksn) != 10:
            raise NotSupportedByModule(
                "DUKPT PIN translation", "payshield", "only TDES DUKPT (a 10-byte KSN) via G0"
            )
        try:
            request = cmd.g0_request(
                bdk.handle, destination.handle, ksn, pin_block, _FORMATS[destination_format], pan
            )
        except FieldError:
            raise ModuleError("translate PIN", "15", "the account number is not a PAN") from None
        reply = await self._ok("translate DUKPT PIN", "G0", request)
        found = self._decoded("translate DUKPT PIN", cmd.pin_reply, reply.fields, "G1")
        return found.pin_block

    async def dukpt_mac(self, bdk: KeyRef, ksn: bytes, usage: DukptKeyUsage, data: bytes) -> bytes:
        raise NotSupportedByModule(
            "DUKPT MAC", "payshield", "the payshield backend has no DUKPT MAC command"
        )

    async def dukpt_initial_key(
        self, bdk: KeyRef, initial_key_id: bytes, kek: KeyRef
    ) -> ExportedKey:
        raise NotSupportedByModule(
            "DUKPT initial key", "payshield", "the payshield backend has no initial-key command"
        )

    # -- the device ----------------------------------------------------------------------

    async def diagnostics(self) -> ModuleStatus:
        reply = await self._ok("diagnostics", "NC", b"")
        found = self._decoded("diagnostics", cmd.nd_reply, reply.fields)
        self.last_diagnostics = ModuleStatus(NAME, found.lmk_check, found.firmware)
        return self.last_diagnostics

    async def echo(self, data: bytes) -> bytes:
        reply = await self._ok("echo", "B2", cmd.b2_request(data))
        return cmd.b3_reply(reply.fields)

    def status(self) -> dict[str, Any]:
        """For /healthz and the metrics: connections, commands in flight, errors by
        code, the last NC answer."""
        pool = self.pool
        diagnostics = self.last_diagnostics
        return {
            "backend": NAME,
            "address": f"{pool.host}:{pool.port}",
            "connected": pool.connected,
            "in_flight": pool.in_flight,
            "commands": pool.commands,
            "errors": dict(sorted(pool.errors.items())),
            "available": pool.up is not False,
            "last_failure": pool.last_failure,
            "last_diagnostics": None
            if diagnostics is None
            else {"lmk_check": diagnostics.lmk_kcv, "firmware": diagnostics.firmware},
        }
