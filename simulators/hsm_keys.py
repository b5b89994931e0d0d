"""The HSM simulator's LMK and its 'S' key blocks.

The simulator's LMK is an AES-256 key; a key "under the LMK" is 'S' followed by a
TR-31 version D block under it (psec). A real payShield's 'S' block is a Thales
key block (its own header and version byte, 'S' + '1'/'0' ...) under its own
key-block LMK: the field's shape is the same (self-delimiting, usage, algorithm,
mode of use and exportability in the header), the bytes are not interchangeable
(docs/hsm.md). Keys sent to or from another party under a ZMK are TR-31 blocks
too: version D under an AES ZMK, version B under a TDES ZMK.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import attrs
import psec
from cryptography.utils import CryptographyDeprecationWarning
from forecourt.keys.crypto import Algorithm, aes_cmac_full, check_key, generate_key, xor
from forecourt.keys.lmk import Lmk, load_lmk

warnings.filterwarnings("ignore", category=CryptographyDeprecationWarning, module=r"psec(\..*)?")

LMK_FILE = "hsm-lmk.key"

_ALGORITHMS = {
    ("A", 16): Algorithm.AES128,
    ("A", 24): Algorithm.AES192,
    ("A", 32): Algorithm.AES256,
    ("T", 16): Algorithm.TDES2,
    ("T", 24): Algorithm.TDES3,
}


# the mode of use a key formed at the console gets, by its TR-31 usage: a BDK
# derives (X), a MAC key (a terminal's sign-on key) MACs both ways (C), a KEK/ZMK
# wraps and unwraps (B)
MODE_OF_USE = {"B0": "X", "M1": "C", "M3": "C", "M6": "C", "K0": "B"}


class BlockRefused(Exception):
    """A key block does not parse or authenticate under the key it is said to be under."""


@attrs.frozen(repr=False)
class ClearKey:
    """A key the simulator has opened, for one command (never logged)."""

    usage: str
    algorithm: Algorithm
    mode_of_use: str
    exportability: str
    key: bytes

    def __repr__(self) -> str:
        return f"ClearKey({self.usage}, {self.algorithm.value})"


def block_header(version: str, usage: str, algorithm: Algorithm, mode: str, export: str) -> str:
    return f"{version}0000{usage}{algorithm.tr31_code}{mode}00{export}0000"


def wrap_block(lmk: Lmk, key: ClearKey) -> str:
    """`key` under the LMK: 'S' + a TR-31 version D block."""
    check_key(key.key, key.algorithm)
    header = block_header("D", key.usage, key.algorithm, key.mode_of_use, key.exportability)
    return "S" + str(psec.tr31.wrap(lmk.key, header, key.key))


def wrap_under(kbpk: ClearKey, key: ClearKey) -> str:
    """`key` under a ZMK: version D under an AES ZMK, version B under a TDES one."""
    check_key(key.key, key.algorithm)
    version = "D" if kbpk.algorithm.is_aes else "B"
    header = block_header(version, key.usage, key.algorithm, key.mode_of_use, key.exportability)
    return "S" + str(psec.tr31.wrap(kbpk.key, header, key.key))


def open_block(kbpk: bytes, block: str) -> ClearKey:
    """The key an 'S' block holds under `kbpk`."""
    if not block.startswith("S"):
        raise BlockRefused("not a key block")
    try:
        header, key = psec.tr31.unwrap(kbpk, block[1:])
    except (ValueError, TypeError, IndexError):
        raise BlockRefused("key block does not authenticate") from None
    key = bytes(key)
    algorithm = _ALGORITHMS.get((header.algorithm, len(key)))
    if algorithm is None:
        raise BlockRefused("key block holds no AES or TDES key")
    return ClearKey(header.key_usage, algorithm, header.mode_of_use, header.exportability, key)


def random_key(algorithm: Algorithm) -> bytes:
    return generate_key(algorithm)


def lmk_check_value(lmk: Lmk) -> str:
    """NC's 16H LMK check: the first 8 bytes of the AES-CMAC of a zero block (the
    6-digit KCV's first six characters are the same)."""
    return aes_cmac_full(lmk.key, bytes(16))[:8].hex().upper()


def load_or_create_lmk(data_dir: Path, lmk_file: Path | None = None) -> Lmk:
    """The simulator's LMK: from `lmk_file` if given, else `DATA_DIR/hsm-lmk.key`,
    generated (mode 0600) on first run."""
    if lmk_file is not None:
        return load_lmk(lmk_file, environ={})
    path = data_dir / LMK_FILE
    if not path.exists():
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        Lmk(os.urandom(32)).write(path)
    return load_lmk(path, environ={})


def form_key(lmk: Lmk, components: list[bytes], usage: str, algorithm: Algorithm) -> str:
    """A key formed from clear components (their XOR) as key custodians do at the
    HSM's console, returned under the LMK: how a ZMK or BDK gets into the
    simulator (tests, the demo)."""
    if len(components) < 2:
        raise ValueError("a key is formed from two components at least")
    key = components[0]
    for part in components[1:]:
        key = xor(key, part)
    check_key(key, algorithm)
    return wrap_block(
        lmk,
        ClearKey(usage, algorithm, MODE_OF_USE.get(usage, "B"), "N" if usage == "B0" else "E", key),
    )
