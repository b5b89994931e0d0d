"""Store and journal files are the switch user's alone: files 0600, folders 0700.

Processes run under umask 022 (a default login), so SQLite's own 0644 would show.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from forecourt.keys import KeyStore, Lmk
from forecourt.switch.journal.sqlite import SqliteJournal

from . import serving


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_a_run_leaves_only_private_files(tmp_path: Path) -> None:
    serving.init(tmp_path, "--lmk-file", str(tmp_path / "lmk.key"))
    data = tmp_path / "data"
    assert _mode(data) == 0o700 and _mode(data / "keys.db") == 0o600  # as `keys init` made them
    seen: dict[str, int] = {}

    def look() -> None:  # while the switch runs: the -wal and -shm files exist now
        seen.update({p.name: _mode(p) for p in data.iterdir()})
        seen["."] = _mode(data)

    done = serving.serve(serving.config(tmp_path, ""), look)
    assert done.returncode == 0, done
    assert {"journal.db", "journal.db-wal", "journal.db-shm", "keys.db"} <= set(seen), seen
    assert seen.pop(".") == 0o700
    assert seen == dict.fromkeys(seen, 0o600)
    assert all(_mode(p) == 0o600 for p in data.iterdir())


def test_new_data_dirs_are_0700(tmp_path: Path) -> None:
    # the journal without a key store beside it (the keys in PostgreSQL), and a key store
    old = os.umask(0o022)
    try:
        SqliteJournal(tmp_path / "journal" / "journal.db").close()
        KeyStore.init(tmp_path / "keys", lmk=Lmk.generate()).close()
    finally:
        os.umask(old)
    for folder, name in (("journal", "journal.db"), ("keys", "keys.db")):
        assert _mode(tmp_path / folder) == 0o700
        assert _mode(tmp_path / folder / name) == 0o600


def test_wider_modes_are_tightened_with_one_line(tmp_path: Path) -> None:
    serving.init(tmp_path, "--lmk-file", str(tmp_path / "lmk.key"))
    data = tmp_path / "data"
    done = serving.serve(serving.config(tmp_path, ""))
    assert done.returncode == 0, done
    for p in (data / "keys.db", data / "journal.db"):
        os.chmod(p, 0o644)  # as an older version, or a restore from backup, left them
    os.chmod(data, 0o755)
    done = serving.serve(serving.config(tmp_path, ""))
    assert done.returncode == 0, done
    assert _mode(data) == 0o700
    assert _mode(data / "keys.db") == 0o600 and _mode(data / "journal.db") == 0o600
    lines = [line for line in (done.stdout + done.stderr).splitlines() if "tightened" in line]
    assert sum("keys.db " in line for line in lines) == 1, lines
    assert sum("journal.db " in line for line in lines) == 1, lines


def test_the_acquirer_simulators_record_file_is_0600(tmp_path: Path) -> None:
    from forecourt.simulators.acquirer_record import ReceivedLog

    old = os.umask(0o022)
    try:
        log = ReceivedLog(10, tmp_path / "received.jsonl")
        log.open()
        log.close()
    finally:
        os.umask(old)
    assert _mode(tmp_path / "received.jsonl") == 0o600
