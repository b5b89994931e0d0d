"""One PKCS#11 session's key operations (blocking: keys/pkcs11_module.py runs them
in worker threads, one session per thread at a time).

Every key the module makes is a token object that is sensitive and never
extractable, with only the capabilities its use needs plus the one its KCV needs
(CKA_SIGN for an AES key: the project's AES KCV is an AES-CMAC of a zero block;
CKA_ENCRYPT for a TDES key). A retail-MAC key (2-key TDES) is two objects: the key
itself as K1‖K2‖K1 and, labelled `<label>.chain`, K1‖K1‖K1 (single DES as TDES),
so ISO 9797-1 algorithm 3 runs as DES3-CBC in the token and no key leaves it.
Nothing here ever reads CKA_VALUE.
"""

from __future__ import annotations

import ctypes
import hmac
import os
import re
import uuid
from collections import OrderedDict
from typing import Any

import pkcs11
from forecourt.keys import dukpt_aes
from forecourt.keys.crypto import Algorithm
from forecourt.keys.model import KeyType
from forecourt.keys.security_module import DukptKeyUsage, ModuleError
from pkcs11 import Attribute, Mechanism, ObjectClass
from pkcs11 import KeyType as P11KeyType

__all__ = ["CHAIN_SUFFIX", "NAME", "TokenKey", "TokenSession", "ckr_name", "key_template"]

# a secret-key object: python-pkcs11 mixes its operations (sign, encrypt, derive_key,
# wrap_key, ...) in at run time, so its static type says none of them
TokenKey = Any

NAME = "pkcs11"
CHAIN_SUFFIX = ".chain"
_CAPABILITIES = (
    Attribute.ENCRYPT,
    Attribute.DECRYPT,
    Attribute.SIGN,
    Attribute.VERIFY,
    Attribute.WRAP,
    Attribute.UNWRAP,
    Attribute.DERIVE,
)
# python-pkcs11's exception names that are not the CKR name spelled in CamelCase
_CKR_NAMES = {
    "FunctionCancelled": "CKR_FUNCTION_CANCELED",
    "NoSuchKey": "CKR_KEY_HANDLE_INVALID",
    "NoSuchToken": "CKR_TOKEN_NOT_PRESENT",
    "MultipleObjectsReturned": "CKR_GENERAL_ERROR",
    "ArgumentsBad": "CKR_ARGUMENTS_BAD",
}


def ckr_name(exc: BaseException) -> str:
    """The CKR name of a python-pkcs11 exception (`KeyHandleInvalid` ->
    `CKR_KEY_HANDLE_INVALID`)."""
    name = type(exc).__name__
    return _CKR_NAMES.get(name) or "CKR_" + re.sub(r"(?<!^)(?=[A-Z])", "_", name).upper()


def _uses(key_type: KeyType, algorithm: Algorithm) -> set[Attribute]:
    kcv_use = Attribute.SIGN if algorithm.is_aes else Attribute.ENCRYPT
    if key_type.is_mac:
        return {kcv_use}  # CMAC signs; retail MAC encrypts (DES3-CBC)
    if key_type is KeyType.BDK:
        return {Attribute.DERIVE, kcv_use}
    if key_type in (KeyType.ZMK, KeyType.KEK):
        return {Attribute.WRAP, Attribute.UNWRAP, kcv_use}
    return {Attribute.ENCRYPT, Attribute.DECRYPT, kcv_use}  # PIN and data keys, IK


def key_template(
    key_type: KeyType, algorithm: Algorithm, label: str | None, *, token: bool = True
) -> dict[Attribute, Any]:
    """The attributes of a key the module makes (docs/hsm.md "The pkcs11 backend")."""
    uses = _uses(key_type, algorithm)
    # the label first: SoftHSM's C_UnwrapKey applies the template in order, and a
    # label after CKA_MODIFIABLE false is refused (CKR_ATTRIBUTE_READ_ONLY)
    template: dict[Attribute, Any] = {} if label is None else {Attribute.LABEL: label}
    template |= {
        Attribute.TOKEN: token,
        Attribute.PRIVATE: True,
        Attribute.SENSITIVE: True,
        Attribute.EXTRACTABLE: False,
        Attribute.MODIFIABLE: False,
    }
    template |= {use: use in uses for use in _CAPABILITIES}
    return template


def new_label(key_type: KeyType) -> str:
    return f"forecourt.{key_type.value.lower()}.{uuid.uuid4().hex}"


class _DerivationString(ctypes.Structure):
    """CK_KEY_DERIVATION_STRING_DATA, which python-pkcs11 builds only for AES."""

    _fields_ = (("data", ctypes.c_void_p), ("length", ctypes.c_ulong))


def _pad_method_1(data: bytes) -> bytes:
    if not data:
        return bytes(8)
    return data + bytes(-len(data) % 8)


class TokenSession:
    """A logged-in session and the key objects it has looked up (by label, LRU)."""

    def __init__(self, session: pkcs11.Session, cache_size: int = 1024) -> None:
        self.session = session
        self._objects: OrderedDict[str, TokenKey] = OrderedDict()
        self._cache_size = cache_size

    def close(self) -> None:
        self._objects.clear()
        self.session.close()

    # -- objects ----------------------------------------------------------------------

    def key(self, label: str) -> TokenKey:
        found = self._objects.get(label)
        if found is None:
            found = self.session.get_key(object_class=ObjectClass.SECRET_KEY, label=label)
            self._objects[label] = found
            if len(self._objects) > self._cache_size:
                self._objects.popitem(last=False)
        else:
            self._objects.move_to_end(label)
        return found

    # -- keys -------------------------------------------------------------------------

    def generate(self, key_type: KeyType, algorithm: Algorithm) -> str:
        label = new_label(key_type)
        template = key_template(key_type, algorithm, label)
        if algorithm.is_aes:
            self.session.generate_key(
                P11KeyType.AES, 8 * algorithm.key_length, store=True, template=template
            )
        elif algorithm is Algorithm.TDES3:
            self.session.generate_key(P11KeyType.DES3, store=True, template=template)
        else:
            self._generate_tdes2(key_type, label)
        return label

    def _generate_tdes2(self, key_type: KeyType, label: str) -> None:
        """A 2-key TDES key made in the token: a random DES3 session key B
        (C_GenerateKey), the key objects derived from it (`derive_tdes2`), B destroyed."""
        base_template = key_template(KeyType.BDK, Algorithm.TDES3, None, token=False)
        base_template[Attribute.ENCRYPT] = False  # B only derives
        base = self.session.generate_key(P11KeyType.DES3, store=False, template=base_template)
        try:
            a = os.urandom(8)
            b = os.urandom(8)
            while b == a:
                b = os.urandom(8)
            self.derive_tdes2(base, a, b, key_type, label)
        finally:
            base.destroy()

    def derive_tdes2(
        self, base: TokenKey, a: bytes, b: bytes, key_type: KeyType, label: str
    ) -> None:
        """K1‖K2‖K1 as CKM_DES3_ECB_ENCRYPT_DATA of a‖b‖a under `base` (and, for a MAC
        key, K1‖K1‖K1 of a‖a‖a): K1 = E_B(a), K2 = E_B(b), odd parity set by the
        token, neither ever outside it."""
        self._des3_derive(base, a + b + a, key_template(key_type, Algorithm.TDES2, label))
        if key_type.is_mac:
            chain = key_template(key_type, Algorithm.TDES2, label + CHAIN_SUFFIX)
            self._des3_derive(base, a * 3, chain)

    def _des3_derive(self, base: TokenKey, data: bytes, template: dict[Attribute, Any]) -> TokenKey:
        buffer = ctypes.create_string_buffer(data, len(data))
        param = bytes(_DerivationString(ctypes.cast(buffer, ctypes.c_void_p), len(data)))
        derived: TokenKey = base.derive_key(
            P11KeyType.DES3,
            192,
            mechanism=Mechanism.DES3_ECB_ENCRYPT_DATA,
            mechanism_param=param,
            template={**template, Attribute.VALUE_LEN: pkcs11.DEFAULT},
        )
        del buffer  # kept alive until the derivation returned
        return derived

    def unwrap(
        self, zmk_label: str, wrapped: bytes, key_type: KeyType, algorithm: Algorithm
    ) -> str:
        """An RFC 3394 AES key wrap under an AES ZMK (CKM_AES_KEY_WRAP), unwrapped into a
        token object; a 2-key TDES key arrives as its 16 bytes (CKK_DES2)."""
        label = new_label(key_type)
        p11_type = P11KeyType.AES if algorithm.is_aes else P11KeyType.DES2
        if algorithm is Algorithm.TDES3:
            p11_type = P11KeyType.DES3
        self.key(zmk_label).unwrap_key(
            ObjectClass.SECRET_KEY,
            p11_type,
            wrapped,
            mechanism=Mechanism.AES_KEY_WRAP,
            store=True,
            template=key_template(key_type, algorithm, label),
        )
        return label

    def kcv(self, label: str, algorithm: Algorithm) -> str:
        key = self.key(label)
        if algorithm.is_aes:
            check = key.sign(bytes(16), mechanism=Mechanism.AES_CMAC)
        else:
            check = key.encrypt(bytes(8), mechanism=Mechanism.DES3_ECB)
        return bytes(check[:3]).hex().upper()

    # -- MACs -------------------------------------------------------------------------

    def cmac(self, label: str, data: bytes) -> bytes:
        return bytes(self.key(label).sign(data, mechanism=Mechanism.AES_CMAC))[:8]

    def retail_mac(self, label: str, data: bytes) -> bytes:
        """ISO 9797-1 algorithm 3, padding method 1: the CBC chain of every block but
        the last under K1‖K1‖K1, then the last block DES3-CBC under K1‖K2‖K1 with the
        chain as its IV (E_K1(D_K2(E_K1(h ⊕ last))) is exactly alg. 3's output)."""
        blocks = _pad_method_1(data)
        chain = bytes(8)
        if len(blocks) > 8:
            head = self.key(label + CHAIN_SUFFIX).encrypt(
                blocks[:-8], mechanism=Mechanism.DES3_CBC, mechanism_param=bytes(8)
            )
            chain = bytes(head[-8:])
        last = self.key(label).encrypt(
            blocks[-8:], mechanism=Mechanism.DES3_CBC, mechanism_param=chain
        )
        return bytes(last)

    def mac(self, label: str, retail: bool, data: bytes) -> bytes:
        return self.retail_mac(label, data) if retail else self.cmac(label, data)

    def verify(self, label: str, retail: bool, data: bytes, mac: bytes) -> bool:
        return hmac.compare_digest(self.mac(label, retail, data), mac)

    # -- DUKPT ------------------------------------------------------------------------

    def _aes_derive(
        self,
        base: TokenKey,
        algorithm: Algorithm,
        data: bytes,
        template: dict[Attribute, Any],
    ) -> TokenKey:
        derived: TokenKey = base.derive_key(
            P11KeyType.AES,
            8 * algorithm.key_length,
            mechanism=Mechanism.AES_ECB_ENCRYPT_DATA,
            mechanism_param=data,
            template=template,
        )
        return derived

    def aes_initial_key(
        self, bdk_label: str, bdk_algorithm: Algorithm, ident: bytes, template: dict[Attribute, Any]
    ) -> TokenKey:
        """X9.24-3 6.3.3: the initial key, derived from the BDK in the token."""
        data = dukpt_aes.derivation_blocks(dukpt_aes.KEY_DERIVATION_INITIAL, bdk_algorithm, ident)
        return self._aes_derive(self.key(bdk_label), bdk_algorithm, data, template)

    def aes_working_key(
        self,
        bdk_label: str,
        bdk_algorithm: Algorithm,
        ksn: bytes,
        usage: DukptKeyUsage,
        capability: Attribute,
    ) -> TokenKey:
        """X9.24-3 6.5: the initial key, one intermediate derivation key per one-bit
        of the counter, then the AES-128 working key for `usage`: each a session
        object derived with CKM_AES_ECB_ENCRYPT_DATA, the intermediates destroyed as
        the walk passes them. The caller destroys the working key."""
        counter = dukpt_aes.counter_of(ksn)
        if not dukpt_aes.is_valid_counter(counter):
            raise ModuleError(
                "dukpt", NAME, "AES DUKPT counter is zero or has more than 16 one-bits"
            )
        walking = key_template(KeyType.BDK, bdk_algorithm, None, token=False)
        walking[Attribute.SIGN] = False  # an intermediate key only derives
        key = self.aes_initial_key(bdk_label, bdk_algorithm, ksn[:8], walking)
        tail = ksn[4:8]
        walked = 0
        try:
            for bit in range(31, -1, -1):
                if counter >> bit & 1:
                    walked |= 1 << bit
                    data = dukpt_aes.derivation_blocks(
                        dukpt_aes.KEY_DERIVATION, bdk_algorithm, tail + walked.to_bytes(4, "big")
                    )
                    nxt = self._aes_derive(key, bdk_algorithm, data, walking)
                    key.destroy()
                    key = nxt
            working = key_template(KeyType.TAK, Algorithm.AES128, None, token=False)
            working |= {Attribute.SIGN: capability is Attribute.SIGN}
            working |= {Attribute.DECRYPT: capability is Attribute.DECRYPT}
            data = dukpt_aes.derivation_blocks(
                usage.value, Algorithm.AES128, tail + counter.to_bytes(4, "big")
            )
            return self._aes_derive(key, Algorithm.AES128, data, working)
        finally:
            key.destroy()

    def dukpt_mac(
        self,
        bdk_label: str,
        bdk_algorithm: Algorithm,
        ksn: bytes,
        usage: DukptKeyUsage,
        data: bytes,
    ) -> bytes:
        key = self.aes_working_key(bdk_label, bdk_algorithm, ksn, usage, Attribute.SIGN)
        try:
            return bytes(key.sign(data, mechanism=Mechanism.AES_CMAC))[:8]
        finally:
            key.destroy()

    def dukpt_initial_key(
        self, bdk_label: str, bdk_algorithm: Algorithm, ident: bytes, kek_label: str
    ) -> tuple[bytes, str]:
        """The initial key wrapped under the KEK (RFC 3394) and its KCV: derived for
        this one call as an extractable session object, the one key the module lets
        C_WrapKey take, and destroyed after."""
        template = key_template(KeyType.IK, bdk_algorithm, None, token=False)
        template |= {Attribute.EXTRACTABLE: True, Attribute.ENCRYPT: False}
        template |= {Attribute.DECRYPT: False}
        key = self.aes_initial_key(bdk_label, bdk_algorithm, ident, template)
        try:
            check = bytes(key.sign(bytes(16), mechanism=Mechanism.AES_CMAC)[:3]).hex().upper()
            wrapped = bytes(self.key(kek_label).wrap_key(key, mechanism=Mechanism.AES_KEY_WRAP))
            return wrapped, check
        finally:
            key.destroy()
