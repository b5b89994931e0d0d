"""forecourt.keys: key store, key hierarchy, TR-31 blocks, MACs, KCVs, key exchange.

See docs/keys.md. This package never imports forecourt.switch.
"""

from __future__ import annotations

from forecourt.keys.crypto import Algorithm, Family, generate_key, kcv
from forecourt.keys.errors import (
    DuplicateOwner,
    InvalidKey,
    InvalidName,
    KcvMismatch,
    KeyBlockInvalid,
    KeysError,
    LmkError,
    LmkInvalid,
    LmkMismatch,
    LmkMissing,
    NoActiveKey,
    PayloadError,
    StaleKeyChange,
    StoreConflict,
    StoreError,
    StoreExists,
    StoreNotInitialised,
    UnknownKey,
    UnknownOwner,
)
from forecourt.keys.exchange import (
    ClearKey,
    PayloadEntry,
    WorkingKeys,
    build_payload,
    decode_payload,
    encode_payload,
    install_key_change,
)
from forecourt.keys.key_change import ChangedKey, KeyChange
from forecourt.keys.keyring import MacCheck, MacKey, MacKeyring, VerifyResult
from forecourt.keys.lmk import LMK_ENV, Lmk, load_lmk
from forecourt.keys.mac import (
    AesCmac,
    MacAlgorithm,
    PreparedMac,
    RetailMac,
    aes_cmac,
    prepare_mac,
    retail_mac,
)
from forecourt.keys.model import (
    AcquirerInfo,
    AuditEntry,
    KekCeremony,
    KeyInfo,
    KeyPolicy,
    KeyState,
    KeyType,
    OwnerInfo,
    OwnerKind,
)
from forecourt.keys.pin import (
    PinBlockError,
    decrypt_pin_block,
    encrypt_pin_block,
    translate_pin_block,
)
from forecourt.keys.sign_on import SIGN_ON_LABEL, kdf_counter_cmac, sign_on_key, sign_on_mac
from forecourt.keys.stamp import default_data_dir
from forecourt.keys.store import KeyStore

__all__ = [
    "LMK_ENV",
    "SIGN_ON_LABEL",
    "AcquirerInfo",
    "AesCmac",
    "Algorithm",
    "AuditEntry",
    "ChangedKey",
    "ClearKey",
    "DuplicateOwner",
    "Family",
    "InvalidKey",
    "InvalidName",
    "KcvMismatch",
    "KekCeremony",
    "KeyBlockInvalid",
    "KeyChange",
    "KeyInfo",
    "KeyPolicy",
    "KeyState",
    "KeyStore",
    "KeyType",
    "KeysError",
    "Lmk",
    "LmkError",
    "LmkInvalid",
    "LmkMismatch",
    "LmkMissing",
    "MacAlgorithm",
    "MacCheck",
    "MacKey",
    "MacKeyring",
    "NoActiveKey",
    "OwnerInfo",
    "OwnerKind",
    "PayloadEntry",
    "PayloadError",
    "PinBlockError",
    "PreparedMac",
    "RetailMac",
    "StaleKeyChange",
    "StoreConflict",
    "StoreError",
    "StoreExists",
    "StoreNotInitialised",
    "UnknownKey",
    "UnknownOwner",
    "VerifyResult",
    "WorkingKeys",
    "aes_cmac",
    "build_payload",
    "decode_payload",
    "decrypt_pin_block",
    "default_data_dir",
    "encode_payload",
    "encrypt_pin_block",
    "generate_key",
    "install_key_change",
    "kcv",
    "kdf_counter_cmac",
    "load_lmk",
    "prepare_mac",
    "retail_mac",
    "sign_on_key",
    "sign_on_mac",
    "translate_pin_block",
]
