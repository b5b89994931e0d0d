"""Component files: a custodian's KEK or ZMK component on disk, for non-interactive ceremonies.

A written file is created exclusively with mode 0600 (never over another file,
whatever the umask), one per component, so each custodian can take their own
away; a file read for import holds one line of hex digits and `#` comments,
which is also what a written file looks like.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from forecourt.keys.crypto import kcv
from forecourt.keys.provisioning import MasterKey


class CeremonyError(Exception):
    """An operator's mistake in the ceremony: one line naming the thing and the fix."""


def parse_component(text: str, what: str) -> bytes:
    t = re.sub(r"\s+", "", text)
    if not t or not re.fullmatch(r"[0-9A-Fa-f]*", t) or len(t) % 2:
        raise CeremonyError(f"{what} must be an even number of hex digits")
    return bytes.fromhex(t)


def grouped(component: bytes) -> str:
    h = component.hex().upper()
    return " ".join(h[i : i + 4] for i in range(0, len(h), 4))


def component_file_text(label: str, number: int, master: MasterKey, what: str = "KEK") -> str:
    component = master.components[number - 1]
    return (
        f"# forecourt: {label} {what} component {number} of {len(master.components)}"
        f" ({master.algorithm.value}), for custodian {number} only\n"
        f"# component {number} KCV: {kcv(component, master.algorithm)}\n"
        f"# {what} KCV: {master.kcv}\n"
        f"{grouped(component)}\n"
    )


def write_component_files(
    directory: Path, stem: str, label: str, master: MasterKey, what: str = "KEK"
) -> list[Path]:
    """One file per component, mode 0600, created exclusively (never overwriting)."""
    if not directory.is_dir():
        raise CeremonyError(f"--component-files {directory}: no such directory; create it first")
    paths = [directory / f"{stem}-component-{i}.txt" for i in range(1, len(master.components) + 1)]
    for path in paths:
        if path.exists() or path.is_symlink():
            raise CeremonyError(
                f"{path} already exists; component files are never overwritten:"
                " move it away or give another directory"
            )
    written: list[Path] = []
    try:
        for i, path in enumerate(paths, 1):
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            except FileExistsError:
                raise CeremonyError(
                    f"{path} already exists; component files are never overwritten"
                ) from None
            written.append(path)
            with os.fdopen(fd, "w", encoding="ascii") as f:
                os.fchmod(f.fileno(), 0o600)  # whatever the umask
                f.write(component_file_text(label, i, master, what))
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise
    return paths


def read_component_file(path: Path, number: int) -> bytes:
    """A component file: one line of hex digits (spaces allowed), `#` comment lines."""
    try:
        text = path.read_bytes().decode("ascii")
    except OSError as exc:
        raise CeremonyError(
            f"component file {path}: {exc.strerror or type(exc).__name__}"
        ) from None
    except UnicodeDecodeError:
        raise CeremonyError(f"component file {path}: not a text file of hex digits") from None
    lines = [s for s in (raw.strip() for raw in text.splitlines()) if s and not s.startswith("#")]
    if len(lines) != 1:
        raise CeremonyError(
            f"component file {path}: expected one line of hex digits (and # comments)"
        )
    return parse_component(lines[0], f"component {number} in {path}")


def write_private_file(path: Path, text: str) -> None:
    """A new file of mode 0600 holding `text`, created exclusively (never over another)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        raise CeremonyError(
            f"{path} already exists; a key file is never overwritten: move it away"
        ) from None
    except OSError as exc:
        raise CeremonyError(f"{path}: {exc.strerror or type(exc).__name__}") from None
    with os.fdopen(fd, "w", encoding="ascii") as f:
        os.fchmod(f.fileno(), 0o600)  # whatever the umask
        f.write(text)
