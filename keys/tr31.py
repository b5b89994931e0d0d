"""TR-31 key blocks through psec, with headers fixed per key type.

Stored keys are TR-31 version D blocks under the AES-256 LMK; keys on the wire are
version B (TDES KEK/ZMK) or D (AES KEK/ZMK). Every unwrap checks that the block's
usage and algorithm fit the key type it is meant to be, so a block cannot be
moved from one slot to another. psec's error texts are replaced by ours (they
quote block fragments).
"""

from __future__ import annotations

import warnings

import psec
from cryptography.utils import CryptographyDeprecationWarning
from forecourt.keys.crypto import Algorithm, check_key
from forecourt.keys.errors import KeyBlockInvalid
from forecourt.keys.model import KeyType

# psec (1.3) still reaches TripleDES through cryptography's old location; that is
# psec's business, not an operator's: silence exactly that warning from psec.
warnings.filterwarnings("ignore", category=CryptographyDeprecationWarning, module=r"psec(\..*)?")

_USAGE: dict[KeyType, tuple[str, str]] = {
    # key type -> (TR-31 key usage for TDES, for AES); mode of use below
    KeyType.KEK: ("K0", "K0"),
    KeyType.ZMK: ("K0", "K0"),
    KeyType.TAK: ("M3", "M6"),  # ISO 9797-1 MAC alg. 3 / ISO 9797-1:2011 MAC alg. 5 (CMAC)
    KeyType.ZAK: ("M3", "M6"),
    KeyType.TPK: ("P0", "P0"),
    KeyType.ZPK: ("P0", "P0"),
    KeyType.TDK: ("D0", "D0"),
    KeyType.BDK: ("B0", "B0"),  # base derivation key
    KeyType.IK: ("B1", "B1"),  # initial DUKPT key
    KeyType.SOK: ("M3", "M6"),  # the sign-on proof key: a MAC key
}
_MODE: dict[KeyType, str] = {
    KeyType.KEK: "B",
    KeyType.ZMK: "B",
    KeyType.TAK: "C",
    KeyType.ZAK: "C",
    KeyType.TPK: "B",
    KeyType.ZPK: "B",
    KeyType.TDK: "B",
    KeyType.BDK: "X",  # used to derive other keys
    KeyType.IK: "X",
    KeyType.SOK: "C",
}


def version_id_header(
    version_id: str, key_type: KeyType, algorithm: Algorithm, exportability: str
) -> str:
    usage = _USAGE[key_type][1 if algorithm.is_aes else 0]
    return f"{version_id}0000{usage}{algorithm.tr31_code}{_MODE[key_type]}00{exportability}0000"


def wrap(
    kbpk: bytes,
    kbpk_algorithm: Algorithm,
    key: bytes,
    key_type: KeyType,
    algorithm: Algorithm,
    exportability: str = "N",
) -> str:
    """Wrap `key` under `kbpk`: version D under an AES KBPK, version B under TDES."""
    check_key(key, algorithm)
    version_id = "D" if kbpk_algorithm.is_aes else "B"
    header = version_id_header(version_id, key_type, algorithm, exportability)
    try:
        return str(psec.tr31.wrap(kbpk, header, key))
    except (ValueError, TypeError):
        raise KeyBlockInvalid(f"cannot wrap {key_type.value} under this key") from None


def unwrap_any(kbpk: bytes, block: str, key_type: KeyType) -> tuple[Algorithm, bytes]:
    """Unwrap a `key_type` block; the algorithm comes from the header and key length."""
    try:
        header, key = psec.tr31.unwrap(kbpk, block)
    except (ValueError, TypeError, IndexError):
        raise KeyBlockInvalid(
            f"{key_type.value} key block does not authenticate or parse"
        ) from None
    key = bytes(key)
    if header.algorithm == "A":
        algorithm = {16: Algorithm.AES128, 24: Algorithm.AES192, 32: Algorithm.AES256}.get(len(key))
    elif header.algorithm == "T":
        algorithm = {16: Algorithm.TDES2, 24: Algorithm.TDES3}.get(len(key))
    else:
        algorithm = None
    if algorithm is None:
        raise KeyBlockInvalid(f"{key_type.value} key block holds no AES or TDES key")
    usage = _USAGE[key_type][1 if algorithm.is_aes else 0]
    if header.key_usage != usage:
        raise KeyBlockInvalid(
            f"key block has usage {header.key_usage}, expected {usage} for {key_type.value}"
        )
    return algorithm, key


def unwrap(kbpk: bytes, block: str, key_type: KeyType, algorithm: Algorithm) -> bytes:
    """Unwrap and check that the block holds a `key_type` key of `algorithm`."""
    found, key = unwrap_any(kbpk, block, key_type)
    if found is not algorithm:
        raise KeyBlockInvalid(
            f"{key_type.value} key block holds {found.value}, expected {algorithm.value}"
        )
    return key
