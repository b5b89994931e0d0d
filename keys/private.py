"""Private files: the key store and the journal are for their owner alone.

`keys.db` holds TR-31 blocks, `journal.db` sealed SAF payloads and masked PANs;
no other local user has a reason to read either. New files are created 0600 and
new folders 0700. An existing one with a wider mode (made by an older version,
or by hand) is tightened with one log line, and refused only when it cannot be
tightened (someone else owns it; a folder is then only warned about). SQLite
creates its `-wal` and `-shm` files with the mode of the database file, so
creating that file first is enough.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

from forecourt.keys.errors import NotPrivate

log = logging.getLogger("forecourt.keys")

FILE_MODE = 0o600
DIR_MODE = 0o700
SQLITE_SIDECARS = ("-wal", "-shm", "-journal")


def tighten(path: Path) -> None:
    """Take group and other bits off `path` (one log line when there were any)."""
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        return
    if not mode & 0o077:
        return
    private = mode & ~0o077
    try:
        os.chmod(path, private)
    except OSError:
        raise NotPrivate(
            f"{path} is mode {mode:04o}, open to group or others, and cannot be tightened"
            f" here: chmod {private:o} {path} (as its owner)"
        ) from None
    log.warning("tightened %s from mode %04o to %04o", path, mode, private)


def private_dir(path: Path) -> None:
    """`path` exists as a folder of mode 0700 (created so, or tightened). A folder
    someone else owns is only warned about: its files are 0600, it shows names."""
    if not path.exists():
        path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        os.chmod(path, DIR_MODE)  # the umask may have taken more; never less
        return
    try:
        tighten(path)
    except NotPrivate as exc:
        log.warning("%s", exc)


def private_file(path: Path, sidecars: tuple[str, ...] = ()) -> None:
    """`path` exists as a file of mode 0600 (created empty so, or tightened), and
    so do the `sidecars` that exist (e.g. SQLite's `-wal`, `-shm`)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        tighten(path)
    else:
        os.close(fd)
    for suffix in sidecars:
        tighten(path.with_name(path.name + suffix))
