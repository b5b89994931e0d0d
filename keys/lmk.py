"""The local master key (LMK): the one key that protects every stored key.

The LMK is an AES-256 key. It comes from the environment (FORECOURT_LMK, hex) or
from a file of mode 0600 holding its hex, kept away from the data directory
(`/etc/forecourt/lmk.key`, another volume, or a secret manager that sets the
environment): a backup of the data directory must not carry the key that opens
every key in it and every sealed SAF record. An LMK file inside the data
directory is refused unless a demo allows it. The LMK is never written into the
store; the store keeps only its KCV, so opening a store with another LMK is refused.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from pathlib import Path

from forecourt.keys.crypto import Algorithm, kcv
from forecourt.keys.errors import LmkInDataDir, LmkInvalid, LmkMissing

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
        if not path.parent.exists():
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            raise LmkInvalid(f"LMK file {path} already exists") from None
        with os.fdopen(fd, "w") as f:
            f.write(self._key.hex().upper() + "\n")
        os.chmod(path, 0o600)


def default_lmk_path(data_dir: Path) -> Path:
    """Where an LMK inside the data directory lives (demos and tests only)."""
    return data_dir / LMK_FILE_NAME


def inside(path: Path, folder: Path) -> bool:
    """True if `path` (symbolic links followed) lies within `folder`."""
    return Path(path).resolve().is_relative_to(Path(folder).resolve())


def check_location(lmk_file: Path, data_dir: Path | None, allow_in_data_dir: bool) -> None:
    """Refuse an LMK file inside the data directory (unless a demo allows it)."""
    if data_dir is None or allow_in_data_dir or not inside(lmk_file, data_dir):
        return
    raise LmkInDataDir(
        f"LMK file {lmk_file} is inside the data directory {data_dir}, so every backup of it"
        " would open every key: move it out (e.g. to /etc/forecourt/lmk.key) and give"
        " --lmk-file or [keys] lmk_file, or set FORECOURT_LMK"
        " (a demo may pass --allow-lmk-in-data-dir / allow_lmk_in_data_dir = true)"
    )


def load_lmk(
    lmk_file: Path | None = None,
    environ: Mapping[str, str] | None = None,
    *,
    data_dir: Path | None = None,
    allow_in_data_dir: bool = False,
) -> Lmk:
    """The LMK from FORECOURT_LMK if set, else from `lmk_file` (mode 0600), which
    must not lie inside `data_dir` unless `allow_in_data_dir`."""
    env = os.environ if environ is None else environ
    text = env.get(LMK_ENV)
    if text:
        return Lmk.from_hex(text, source=LMK_ENV)
    if lmk_file is None:
        raise LmkMissing(f"no LMK: set {LMK_ENV} or give an LMK file (--lmk-file, [keys] lmk_file)")
    check_location(lmk_file, data_dir, allow_in_data_dir)
    try:
        st = os.stat(lmk_file)
    except FileNotFoundError:
        raise LmkMissing(
            f"no LMK: {lmk_file} does not exist and {LMK_ENV} is not set"
            " (create one with 'forecourt keys init --lmk-file PATH')"
        ) from None
    if stat.S_IMODE(st.st_mode) & 0o077:
        raise LmkInvalid(f"LMK file {lmk_file} is readable by group or others; chmod 600 it")
    try:
        text = lmk_file.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError):
        raise LmkInvalid(f"LMK file {lmk_file} cannot be read") from None
    return Lmk.from_hex(text, source=f"LMK file {lmk_file}")
