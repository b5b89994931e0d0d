"""The local master key (LMK): the one key that protects every stored key.

The LMK is an AES-256 key. It comes from the environment (FORECOURT_LMK, hex) or
from a file of mode 0600 holding its hex, by default `data_dir/lmk.key`: beside
the database in development, on another volume (or an HSM / secret manager that
sets the environment) in production. It is never written into the store; the
store keeps only its KCV, so that opening a store with another LMK is refused.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from pathlib import Path

from forecourt.keys.crypto import Algorithm, kcv
from forecourt.keys.errors import LmkInvalid, LmkMissing

LMK_ENV = "FORECOURT_LMK"
LMK_FILE_NAME = "lmk.key"


class Lmk:
    """The clear LMK, held in memory only; repr shows the KCV."""

    __slots__ = ("_key", "kcv")

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise LmkInvalid(f"LMK must be a 256-bit AES key (32 bytes), got {len(key)} bytes")
        self._key = bytes(key)
        self.kcv = kcv(self._key, Algorithm.AES256)

    @property
    def key(self) -> bytes:
        return self._key

    def __repr__(self) -> str:
        return f"Lmk(kcv={self.kcv})"

    @classmethod
    def generate(cls) -> Lmk:
        return cls(os.urandom(32))

    @classmethod
    def from_hex(cls, text: str, source: str = "LMK") -> Lmk:
        try:
            key = bytes.fromhex(text.strip())
        except ValueError:
            raise LmkInvalid(f"{source} is not hex") from None
        if len(key) != 32:
            raise LmkInvalid(f"{source} must be 64 hex digits (AES-256), got {len(key) * 2}")
        return cls(key)

    def write(self, path: Path) -> None:
        """Create `path` with mode 0600 (never overwriting an existing file)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            raise LmkInvalid(f"LMK file {path} already exists") from None
        with os.fdopen(fd, "w") as f:
            f.write(self._key.hex().upper() + "\n")
        os.chmod(path, 0o600)


def default_lmk_path(data_dir: Path) -> Path:
    return data_dir / LMK_FILE_NAME


def load_lmk(
    lmk_file: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> Lmk:
    """The LMK from FORECOURT_LMK if set, else from `lmk_file` (mode 0600)."""
    env = os.environ if environ is None else environ
    text = env.get(LMK_ENV)
    if text:
        return Lmk.from_hex(text, source=LMK_ENV)
    if lmk_file is None:
        raise LmkMissing(f"no LMK: set {LMK_ENV} or give an LMK file")
    try:
        st = os.stat(lmk_file)
    except FileNotFoundError:
        raise LmkMissing(
            f"no LMK: {lmk_file} does not exist and {LMK_ENV} is not set"
            " (create one with 'forecourt keys init')"
        ) from None
    if stat.S_IMODE(st.st_mode) & 0o077:
        raise LmkInvalid(f"LMK file {lmk_file} is readable by group or others; chmod 600 it")
    try:
        text = lmk_file.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError):
        raise LmkInvalid(f"LMK file {lmk_file} cannot be read") from None
    return Lmk.from_hex(text, source=f"LMK file {lmk_file}")
