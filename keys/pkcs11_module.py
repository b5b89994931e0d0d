"""The `pkcs11` backend: `SecurityModule` on a PKCS#11 token (SoftHSM2 in the tests).

Keys are sensitive, never-extractable token objects (keys/pkcs11_token.py); a
`KeyRef`'s handle is the object's label, never key material. What the token
does: key generation (C_GenerateKey), import under an AES ZMK (C_UnwrapKey,
RFC 3394), KCVs, AES-CMAC (CKM_AES_CMAC), the retail MAC as DES3-CBC over two
key objects, AES DUKPT derivation (CKM_AES_ECB_ENCRYPT_DATA) and the DUKPT MAC
under the derived key. What it refuses (`NotSupportedByModule`, one line each):
PIN translation (PKCS#11 has none; `software_pin_translation` allows an in-process
one on test systems), export of its non-extractable keys, TR-31 key blocks,
key wrap under a TDES ZMK, TDES DUKPT. docs/hsm.md "The pkcs11 backend".

PKCS#11 calls block: they run in worker threads on a pool of sessions, one at a
time per library (keys/pkcs11_sessions.py). A PKCS#11 error becomes `ModuleError`
whose code is its CKR name; no message carries a key, PIN block or data.
"""

from __future__ import annotations

import hmac
import logging
import os
import re
from collections.abc import Callable, Mapping
from typing import TypeVar

import trio
from forecourt.keys import dukpt_aes
from forecourt.keys.crypto import Algorithm
from forecourt.keys.mac import MacAlgorithm
from forecourt.keys.model import KeyType
from forecourt.keys.pin import Fill
from forecourt.keys.pkcs11_pin import TokenPinKey, translate_in_process
from forecourt.keys.pkcs11_sessions import (
    DEBIAN_SOFTHSM2,
    Pkcs11Settings,
    TokenInfo,
    TokenPool,
    library_lock,
)
from forecourt.keys.pkcs11_token import NAME, TokenSession
from forecourt.keys.security_module import (
    DukptKeyUsage,
    ExportedKey,
    KeyRef,
    ModuleError,
    ModuleStatus,
    NotSupportedByModule,
    PinBlockFormat,
)
from pkcs11 import Attribute

__all__ = ["DEBIAN_SOFTHSM2", "Pkcs11Module", "Pkcs11Settings", "TokenInfo", "library_lock"]
T = TypeVar("T")

log = logging.getLogger("forecourt.keys")
_TR31 = re.compile(r"^[ABCD](\d{4})")


def _looks_like_tr31(cryptogram: str) -> bool:
    m = _TR31.match(cryptogram)
    return m is not None and int(m.group(1)) == len(cryptogram)


class Pkcs11Module:
    """`SecurityModule` on a PKCS#11 token. Open with `open_module` (or the
    constructor in a thread); close with `aclose()`."""

    name = NAME

    def __init__(self, settings: Pkcs11Settings, pin: str, *, fill: Fill = os.urandom) -> None:
        self.settings = settings
        self._fill = fill
        self._pool = TokenPool(settings, pin)
        self.info = self._pool.info
        if settings.software_pin_translation:
            log.warning(
                "pkcs11_software_pin_translation: PIN blocks are translated IN THIS PROCESS"
                " (clear PIN in memory): test systems only, NOT PCI PIN compliant",
                extra={"token": self.info.label},
            )

    @classmethod
    async def open_module(
        cls, settings: Pkcs11Settings, environ: Mapping[str, str] | None = None
    ) -> Pkcs11Module:
        """The module with the user PIN from `$<pin_env>`, opened in a worker thread."""
        env = os.environ if environ is None else environ
        pin = env.get(settings.pin_env, "")
        if not pin:
            raise ModuleError(
                "open token", "pin", f"set ${settings.pin_env} to the token's user PIN"
            )
        return await trio.to_thread.run_sync(lambda: cls(settings, pin))

    async def aclose(self) -> None:
        await self._pool.aclose()

    async def __aenter__(self) -> Pkcs11Module:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"Pkcs11Module(token={self.settings.token_label!r})"

    # -- running a call ------------------------------------------------------------------

    async def _run(self, operation: str, call: Callable[[TokenSession], T]) -> T:
        return await self._pool.run(operation, call)

    def _label(self, ref: KeyRef, operation: str) -> str:
        if ref.backend != NAME:
            raise ModuleError(
                operation, NAME, f"the key reference belongs to the {ref.backend} backend"
            )
        return ref.handle

    def _ref(self, key_type: KeyType, algorithm: Algorithm, label: str, kcv: str) -> KeyRef:
        return KeyRef(key_type, algorithm, kcv, label, NAME)

    # -- keys ------------------------------------------------------------------------

    async def generate_key(self, key_type: KeyType, algorithm: Algorithm) -> KeyRef:
        def call(s: TokenSession) -> tuple[str, str]:
            label = s.generate(key_type, algorithm)
            return label, s.kcv(label, algorithm)

        label, kcv = await self._run("generate_key", call)
        return self._ref(key_type, algorithm, label, kcv)

    async def import_key(
        self, zmk: KeyRef, cryptogram: str, key_type: KeyType, algorithm: Algorithm
    ) -> KeyRef:
        """`cryptogram`: hex of the key's RFC 3394 AES key wrap under an AES ZMK."""
        zmk_label = self._label(zmk, "import_key")
        if _looks_like_tr31(cryptogram):
            raise NotSupportedByModule(
                "import_key",
                NAME,
                "a TR-31 key block cannot be opened by a PKCS#11 token;"
                " send the key as an RFC 3394 AES key wrap under the ZMK",
            )
        if not zmk.algorithm.is_aes:
            raise NotSupportedByModule(
                "import_key", NAME, "SoftHSM has no key wrap under a TDES ZMK: use an AES ZMK"
            )
        if key_type.is_mac and not algorithm.is_aes:
            raise NotSupportedByModule(
                "import_key",
                NAME,
                "a retail MAC key needs K1 alone as a second object, which"
                " no unwrap makes: generate the TDES MAC key in the token instead",
            )
        try:
            wrapped = bytes.fromhex(cryptogram)
        except ValueError:
            raise ModuleError("import_key", NAME, "the cryptogram is not hex") from None

        def call(s: TokenSession) -> tuple[str, str]:
            label = s.unwrap(zmk_label, wrapped, key_type, algorithm)
            return label, s.kcv(label, algorithm)

        label, kcv = await self._run("import_key", call)
        return self._ref(key_type, algorithm, label, kcv)

    async def export_key(self, zmk: KeyRef, key: KeyRef) -> ExportedKey:
        self._label(key, "export_key")
        raise NotSupportedByModule(
            "export_key",
            NAME,
            "keys in the token are never extractable (CKA_EXTRACTABLE false),"
            " so C_WrapKey refuses them: make a key for another party where it may leave",
        )

    async def kcv(self, key: KeyRef) -> str:
        label = self._label(key, "kcv")
        return await self._run("kcv", lambda s: s.kcv(label, key.algorithm))

    # -- MACs ------------------------------------------------------------------------

    async def generate_mac(self, key: KeyRef, algorithm: MacAlgorithm, data: bytes) -> bytes:
        label = self._label(key, "generate_mac")
        retail = _retail(key, algorithm, "generate_mac")
        return await self._run("generate_mac", lambda s: s.mac(label, retail, data))

    async def verify_mac(
        self, key: KeyRef, algorithm: MacAlgorithm, data: bytes, mac: bytes
    ) -> bool:
        label = self._label(key, "verify_mac")
        retail = _retail(key, algorithm, "verify_mac")
        return await self._run("verify_mac", lambda s: s.verify(label, retail, data, mac))

    # -- PINs --------------------------------------------------------------------------

    def _refuse_pin(self, operation: str) -> None:
        if not self.settings.software_pin_translation:
            raise NotSupportedByModule(
                operation,
                NAME,
                "PKCS#11 has no PIN-block translation; use a payment HSM (payshield) for PINs",
            )

    async def translate_pin(
        self,
        source: KeyRef,
        destination: KeyRef,
        pin_block: bytes,
        pan: str,
        source_format: PinBlockFormat,
        destination_format: PinBlockFormat,
    ) -> bytes:
        self._refuse_pin("translate_pin")
        src = self._label(source, "translate_pin")
        dst = self._label(destination, "translate_pin")
        _check_format(source.algorithm, source_format, "translate_pin")
        _check_format(destination.algorithm, destination_format, "translate_pin")

        def call(s: TokenSession) -> bytes:
            return translate_in_process(
                TokenPinKey(s.key(src), source.algorithm, source.kcv),
                TokenPinKey(s.key(dst), destination.algorithm, destination.kcv),
                pin_block,
                pan,
                self._fill,
            )

        return await self._run("translate_pin", call)

    async def translate_dukpt_pin(
        self,
        bdk: KeyRef,
        ksn: bytes,
        destination: KeyRef,
        pin_block: bytes,
        pan: str,
        destination_format: PinBlockFormat,
    ) -> bytes:
        self._refuse_pin("translate_dukpt_pin")
        bdk_label = self._aes_bdk(bdk, ksn, "translate_dukpt_pin")
        dst = self._label(destination, "translate_dukpt_pin")
        _check_format(destination.algorithm, destination_format, "translate_dukpt_pin")

        def call(s: TokenSession) -> bytes:
            usage = DukptKeyUsage.PIN_ENCRYPTION
            key = s.aes_working_key(bdk_label, bdk.algorithm, ksn, usage, Attribute.DECRYPT)
            try:
                return translate_in_process(
                    TokenPinKey(key, Algorithm.AES128, ""),
                    TokenPinKey(s.key(dst), destination.algorithm, destination.kcv),
                    pin_block,
                    pan,
                    self._fill,
                )
            finally:
                key.destroy()

        return await self._run("translate_dukpt_pin", call)

    # -- DUKPT -------------------------------------------------------------------------

    def _aes_bdk(self, bdk: KeyRef, ksn: bytes | None, operation: str) -> str:
        label = self._label(bdk, operation)
        if bdk.key_type is not KeyType.BDK:
            raise ModuleError(operation, NAME, f"a {bdk.key_type.value} is not a BDK")
        if not bdk.algorithm.is_aes:
            raise NotSupportedByModule(
                operation,
                NAME,
                "TDES DUKPT needs key halves XORed into the data (X9.24-1"
                " A.2), which SoftHSM cannot do in the token (no CKM_XOR_BASE_AND_DATA)",
            )
        if ksn is not None and len(ksn) != dukpt_aes.KSN_LENGTH:
            raise ModuleError(operation, NAME, f"an AES DUKPT KSN is 12 bytes, got {len(ksn)}")
        return label

    async def dukpt_mac(self, bdk: KeyRef, ksn: bytes, usage: DukptKeyUsage, data: bytes) -> bytes:
        label = self._aes_bdk(bdk, ksn, "dukpt_mac")
        return await self._run(
            "dukpt_mac", lambda s: s.dukpt_mac(label, bdk.algorithm, ksn, usage, data)
        )

    async def dukpt_verify_mac(
        self, bdk: KeyRef, ksn: bytes, usage: DukptKeyUsage, data: bytes, mac: bytes
    ) -> bool:
        """As the software backend's: the DUKPT MAC compared in the module."""
        return hmac.compare_digest(await self.dukpt_mac(bdk, ksn, usage, data), mac)

    async def dukpt_initial_key(
        self, bdk: KeyRef, initial_key_id: bytes, kek: KeyRef
    ) -> ExportedKey:
        """The initial key under the KEK as hex of its RFC 3394 AES key wrap."""
        label = self._aes_bdk(bdk, None, "dukpt_initial_key")
        kek_label = self._label(kek, "dukpt_initial_key")
        if len(initial_key_id) != dukpt_aes.INITIAL_KEY_ID_LENGTH or not kek.algorithm.is_aes:
            raise ModuleError(
                "dukpt_initial_key", NAME, "an AES initial key ID is 8 bytes, under an AES KEK"
            )

        wrapped, check = await self._run(
            "dukpt_initial_key",
            lambda s: s.dukpt_initial_key(label, bdk.algorithm, initial_key_id, kek_label),
        )
        return ExportedKey(wrapped.hex().upper(), check)

    # -- the device ----------------------------------------------------------------------

    async def diagnostics(self) -> ModuleStatus:
        info = self.info
        firmware = f"{info.manufacturer} {info.model} firmware {info.firmware}"
        return ModuleStatus(backend=NAME, lmk_kcv="", firmware=f"{firmware} (token {info.label})")

    async def echo(self, data: bytes) -> bytes:
        """`data` back after a call the token answers (C_GetTokenInfo)."""
        await self._run("echo", lambda s: self._pool.token.slot.get_token())
        return bytes(data)


def _retail(key: KeyRef, algorithm: MacAlgorithm, operation: str) -> bool:
    retail = algorithm is MacAlgorithm.RETAIL
    if retail == key.algorithm.is_aes or key.algorithm is Algorithm.TDES3:
        raise ModuleError(
            operation, NAME, f"{algorithm.value} MAC does not go with a {key.algorithm.value} key"
        )
    return retail


def _check_format(algorithm: Algorithm, fmt: PinBlockFormat, operation: str) -> None:
    expected = PinBlockFormat.ISO4 if algorithm.is_aes else PinBlockFormat.ISO0
    if fmt is not expected:
        raise ModuleError(
            operation,
            NAME,
            f"PIN block format {fmt.value} does not go with a {algorithm.value} key"
            f" (format {expected.value} does)",
        )
