"""The `software` security module: the SecurityModule protocol in this process.

Every key it hands out is a `KeyRef` whose handle is the key's TR-31 version D
block under the software LMK (the block `keys.db` stores), so a reference made
here opens only where the LMK is. It is today's in-process cryptography
(keys/mac.py, keys/pin.py, keys/tr31.py) behind the protocol, plus DUKPT
(keys/dukpt_aes.py, keys/dukpt_tdes.py). The default backend, and the demo's.

What it protects: keys at rest and in references (under the LMK). What it cannot:
while an operation runs, the clear key and the clear PIN are in this process's
memory; a payment HSM (`payshield`) keeps them inside the device.

Prepared keys (a MAC key's cipher contexts, a PIN key's ECB contexts) are kept
per handle in bounded LRU caches, so the hot path unwraps a block once, not per
message; the DUKPT initial keys per initial key ID likewise (`initial_keys`).
"""

from __future__ import annotations

import collections
import hmac
import os
from collections.abc import Callable
from typing import Generic, TypeVar

from forecourt.keys import dukpt_aes, dukpt_tdes, tr31
from forecourt.keys.crypto import Algorithm, generate_key, kcv
from forecourt.keys.errors import KeysError
from forecourt.keys.lmk import Lmk
from forecourt.keys.mac import MacAlgorithm, PreparedMac, prepare_mac
from forecourt.keys.model import KeyType
from forecourt.keys.pin import Fill, PinKey, SoftwarePinTranslator
from forecourt.keys.security_module import (
    DukptKeyUsage,
    ExportedKey,
    KeyRef,
    ModuleError,
    ModuleStatus,
    PinBlockFormat,
)

__all__ = ["BoundedCache", "SoftwareModule"]

NAME = "software"
# key usage separation: the block's usage is checked against the reference at unwrap,
# and the reference's type against the operation here (payShield's error 28)
_MAC_TYPES = frozenset({KeyType.TAK, KeyType.ZAK, KeyType.SOK})
_PIN_TYPES = frozenset({KeyType.TPK, KeyType.ZPK})
_V = TypeVar("_V")

# X9.24-1 has one MAC variant per direction; "both ways" uses the request one
_TDES_MAC = {
    DukptKeyUsage.MAC_GENERATION: dukpt_tdes.TdesVariant.MAC_REQUEST,
    DukptKeyUsage.MAC_VERIFICATION: dukpt_tdes.TdesVariant.MAC_RESPONSE,
    DukptKeyUsage.MAC_BOTH_WAYS: dukpt_tdes.TdesVariant.MAC_REQUEST,
}


class BoundedCache(Generic[_V]):
    """An LRU map of at most `size` entries, counting hits and misses (metrics)."""

    def __init__(self, size: int) -> None:
        self._size = max(1, size)
        self._entries: collections.OrderedDict[str, _V] = collections.OrderedDict()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str, make: Callable[[], _V]) -> _V:
        found = self.find(key)
        return found if found is not None else self.put(key, make())

    def find(self, key: str) -> _V | None:
        """The entry (now the most recent), or None; no closure to build on the hot path."""
        found = self._entries.get(key)
        if found is not None:
            self._entries.move_to_end(key)
            self.hits += 1
        return found

    def put(self, key: str, value: _V) -> _V:
        """Keep `value` (a miss), the least recent entry out past `size`."""
        self.misses += 1
        self._entries[key] = value
        if len(self._entries) > self._size:
            self._entries.popitem(last=False)
        return value


def _refuse(operation: str, reason: str) -> ModuleError:
    return ModuleError(operation, NAME, reason)


class SoftwareModule:
    """SecurityModule under the software LMK (`[keys] backend = "software"`)."""

    name = NAME

    def __init__(
        self,
        lmk: Lmk,
        *,
        cache_size: int = 4096,
        initial_key_cache_size: int = 1024,
        fill: Fill = os.urandom,
    ) -> None:
        self._lmk = lmk
        self._macs: BoundedCache[PreparedMac] = BoundedCache(cache_size)
        self._pins: BoundedCache[PinKey] = BoundedCache(cache_size)
        self.initial_keys: BoundedCache[bytes] = BoundedCache(initial_key_cache_size)
        self._translator = SoftwarePinTranslator(fill)

    def __repr__(self) -> str:
        return f"SoftwareModule(lmk_kcv={self._lmk.kcv})"

    # -- references ----------------------------------------------------------------

    def ref_of(self, key: bytes, key_type: KeyType, algorithm: Algorithm) -> KeyRef:
        """A reference to a clear key (a ceremony's result, a store row): its
        block under the LMK. Callers drop the clear key afterwards."""
        block = tr31.wrap(
            self._lmk.key,
            Algorithm.AES256,
            key,
            key_type,
            algorithm,
            exportability="N" if key_type.is_master else "E",
        )
        return KeyRef(key_type, algorithm, kcv(key, algorithm), block, NAME)

    def _clear(self, ref: KeyRef, operation: str) -> bytes:
        if ref.backend != NAME:
            raise _refuse(operation, f"the key reference belongs to the {ref.backend} backend")
        try:
            return tr31.unwrap(self._lmk.key, ref.handle, ref.key_type, ref.algorithm)
        except KeysError:
            raise _refuse(operation, f"{ref.key_type.value} key block does not open") from None

    def _mac_key(self, ref: KeyRef, algorithm: MacAlgorithm, operation: str) -> PreparedMac:
        # keyed by the handle itself: the reference's string keeps its hash, so a hit
        # costs one dict lookup (no key string built per MAC, no closure)
        prepared = self._macs.find(ref.handle)
        if prepared is None or prepared.algorithm is not algorithm:
            if ref.key_type not in _MAC_TYPES:
                raise _refuse(operation, f"a {ref.key_type.value} is not a MAC key")
            prepared = self._macs.put(
                ref.handle, prepare_mac(self._clear(ref, operation), algorithm)
            )
        return prepared

    def _pin_key(self, ref: KeyRef, operation: str) -> PinKey:
        found = self._pins.find(ref.handle)
        if found is None:
            if ref.key_type not in _PIN_TYPES:
                raise _refuse(operation, f"a {ref.key_type.value} is not a PIN key")
            found = self._pins.put(ref.handle, PinKey(self._clear(ref, operation), ref.algorithm))
        return found

    # -- the protocol ----------------------------------------------------------------

    async def generate_key(self, key_type: KeyType, algorithm: Algorithm) -> KeyRef:
        return self.ref_of(generate_key(algorithm), key_type, algorithm)

    async def import_key(
        self, zmk: KeyRef, cryptogram: str, key_type: KeyType, algorithm: Algorithm
    ) -> KeyRef:
        kbpk = self._clear(zmk, "import_key")
        try:
            key = tr31.unwrap(kbpk, cryptogram, key_type, algorithm)
        except KeysError:
            raise _refuse("import_key", "the key block does not open under this ZMK") from None
        return self.ref_of(key, key_type, algorithm)

    async def export_key(self, zmk: KeyRef, key: KeyRef) -> ExportedKey:
        if key.key_type in (KeyType.BDK, KeyType.KEK, KeyType.ZMK):
            raise _refuse("export_key", f"a {key.key_type.value} is not exportable")
        block = tr31.wrap(
            self._clear(zmk, "export_key"),
            zmk.algorithm,
            self._clear(key, "export_key"),
            key.key_type,
            key.algorithm,
            exportability="E",
        )
        return ExportedKey(block, key.kcv)

    async def kcv(self, key: KeyRef) -> str:
        return kcv(self._clear(key, "kcv"), key.algorithm)

    async def generate_mac(self, key: KeyRef, algorithm: MacAlgorithm, data: bytes) -> bytes:
        return self._mac_key(key, algorithm, "generate_mac").generate(data)

    async def verify_mac(
        self, key: KeyRef, algorithm: MacAlgorithm, data: bytes, mac: bytes
    ) -> bool:
        return self._mac_key(key, algorithm, "verify_mac").verify(data, mac)

    async def translate_pin(
        self,
        source: KeyRef,
        destination: KeyRef,
        pin_block: bytes,
        pan: str,
        source_format: PinBlockFormat,
        destination_format: PinBlockFormat,
    ) -> bytes:
        _check_format(source.algorithm, source_format, "translate_pin")
        _check_format(destination.algorithm, destination_format, "translate_pin")
        return self._translator.translate(
            pin_block,
            pan,
            self._pin_key(source, "translate_pin"),
            self._pin_key(destination, "translate_pin"),
        )

    async def translate_dukpt_pin(
        self,
        bdk: KeyRef,
        ksn: bytes,
        destination: KeyRef,
        pin_block: bytes,
        pan: str,
        destination_format: PinBlockFormat,
    ) -> bytes:
        _check_format(destination.algorithm, destination_format, "translate_dukpt_pin")
        if bdk.algorithm.is_aes:
            key = self._aes_working_key(bdk, ksn, DukptKeyUsage.PIN_ENCRYPTION)
            source = PinKey(key, Algorithm.AES128)
        else:
            key = self._tdes_session_key(bdk, ksn, dukpt_tdes.TdesVariant.PIN)
            source = PinKey(key, Algorithm.TDES2)
        return self._translator.translate(
            pin_block, pan, source, self._pin_key(destination, "translate_dukpt_pin")
        )

    async def dukpt_mac(self, bdk: KeyRef, ksn: bytes, usage: DukptKeyUsage, data: bytes) -> bytes:
        if bdk.algorithm.is_aes:
            key = self._aes_working_key(bdk, ksn, usage)
            return prepare_mac(key, MacAlgorithm.CMAC).generate(data)
        variant = _TDES_MAC.get(usage)
        if variant is None:
            raise _refuse("dukpt_mac", f"key usage {usage.value:04X} is not a MAC usage")
        key = self._tdes_session_key(bdk, ksn, variant)
        return prepare_mac(key, MacAlgorithm.RETAIL).generate(data)

    async def dukpt_verify_mac(
        self, bdk: KeyRef, ksn: bytes, usage: DukptKeyUsage, data: bytes, mac: bytes
    ) -> bool:
        """Whether `mac` is the DUKPT MAC of `data` (an addition to the protocol:
        the comparison stays in the module, as M8 keeps it in a payShield)."""
        return hmac.compare_digest(await self.dukpt_mac(bdk, ksn, usage, data), mac)

    async def dukpt_initial_key(
        self, bdk: KeyRef, initial_key_id: bytes, kek: KeyRef
    ) -> ExportedKey:
        key, algorithm = self.initial_key(bdk, initial_key_id)
        block = tr31.wrap(
            self._clear(kek, "dukpt_initial_key"),
            kek.algorithm,
            key,
            KeyType.IK,
            algorithm,
            exportability="E",
        )
        return ExportedKey(block, kcv(key, algorithm))

    async def diagnostics(self) -> ModuleStatus:
        return ModuleStatus(backend=NAME, lmk_kcv=self._lmk.kcv, firmware="forecourt software")

    async def echo(self, data: bytes) -> bytes:
        return bytes(data)

    # -- DUKPT -------------------------------------------------------------------------

    def initial_key(self, bdk: KeyRef, initial_key_id: bytes) -> tuple[bytes, Algorithm]:
        """The clear initial key of a terminal, for the injection ceremony only
        (software backend; `dukpt_initial_key` is the protocol's, under a KEK).
        AES: the 8-byte initial key ID; TDES: the 10-byte KSN (counter ignored)."""
        if bdk.key_type is not KeyType.BDK:
            raise _refuse("dukpt_initial_key", f"a {bdk.key_type.value} is not a BDK")
        clear = self._clear(bdk, "dukpt_initial_key")
        try:
            if bdk.algorithm.is_aes:
                return dukpt_aes.aes_initial_key(clear, initial_key_id), bdk.algorithm
            return dukpt_tdes.tdes_ipek(clear, initial_key_id), Algorithm.TDES2
        except KeysError as exc:
            raise _refuse("dukpt_initial_key", str(exc)) from None

    def _cached_initial(self, bdk: KeyRef, ident: bytes, make: Callable[[], bytes]) -> bytes:
        return self.initial_keys.get(f"{bdk.handle}:{ident.hex()}", make)

    def _aes_working_key(self, bdk: KeyRef, ksn: bytes, usage: DukptKeyUsage) -> bytes:
        if len(ksn) != dukpt_aes.KSN_LENGTH:
            raise _refuse("dukpt", f"an AES DUKPT KSN is 12 bytes, got {len(ksn)}")
        ident = dukpt_aes.initial_key_id_of(ksn)
        initial = self._cached_initial(
            bdk, ident, lambda: dukpt_aes.aes_initial_key(self._clear(bdk, "dukpt"), ident)
        )
        try:
            return dukpt_aes.aes_working_key_from_initial(initial, ksn, usage, Algorithm.AES128)
        except KeysError as exc:
            raise _refuse("dukpt", str(exc)) from None

    def _tdes_session_key(self, bdk: KeyRef, ksn: bytes, variant: dukpt_tdes.TdesVariant) -> bytes:
        if len(ksn) != dukpt_tdes.KSN_LENGTH:
            raise _refuse("dukpt", f"a TDES DUKPT KSN is 10 bytes, got {len(ksn)}")
        base = dukpt_tdes.initial_ksn(ksn)
        ipek = self._cached_initial(
            bdk, base, lambda: dukpt_tdes.tdes_ipek(self._clear(bdk, "dukpt"), base)
        )
        try:
            return dukpt_tdes.tdes_variant_key(dukpt_tdes.tdes_future_key(ipek, ksn), variant)
        except KeysError as exc:
            raise _refuse("dukpt", str(exc)) from None


def _check_format(algorithm: Algorithm, fmt: PinBlockFormat, operation: str) -> None:
    expected = PinBlockFormat.ISO4 if algorithm.is_aes else PinBlockFormat.ISO0
    if fmt is not expected:
        raise _refuse(
            operation,
            f"PIN block format {fmt.value} does not go with a {algorithm.value} key"
            f" (format {expected.value} does)",
        )
