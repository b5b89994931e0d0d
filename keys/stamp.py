"""Which store, under which LMK: its location and the LMK stamp in `key_meta`.

A store is a SQLite file in the data directory or a PostgreSQL database. It
keeps only the LMK's KCV (the stamp), so opening it with another LMK fails
loudly (`LmkMismatch`) instead of producing blocks nobody can unwrap, and the
path `init` wrote the LMK file to (`lmk_file`, a hint, not a secret), so later
commands find the LMK without being told where it is again. A store made for a
device backend also records which (`key_backend`, absent: software) and the
device's LMK check value (`device_lmk_check`): its rows hold the device's blocks,
so opening it under another backend or another HSM is refused.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from forecourt.keys.backend import Backend, PostgresBackend, SqliteBackend
from forecourt.keys.errors import (
    KeysError,
    LmkMismatch,
    LmkMissing,
    StoreBackendMismatch,
    StoreError,
    StoreExists,
    StoreNotInitialised,
)
from forecourt.keys.lmk import LMK_ENV, Lmk, check_location, default_lmk_path, load_lmk

log = logging.getLogger("forecourt.keys")

DATA_DIR_ENV = "FORECOURT_DATA_DIR"
STORE_FILE_NAME = "keys.db"
SCHEMA_VERSION = "1"
SOFTWARE = "software"


def default_data_dir() -> Path:
    """FORECOURT_DATA_DIR, else ./data (the journal's data directory too)."""
    return Path(os.environ.get(DATA_DIR_ENV) or "data")


def _data_dir(data_dir: Path | str | None) -> Path:
    return Path(data_dir) if data_dir is not None else default_data_dir()


def _meta(backend: Backend, name: str) -> str | None:
    try:
        with backend.read() as tx:
            rows = tx.query("SELECT value FROM key_meta WHERE name = ?", (name,))
    except StoreError:
        return None
    return str(rows[0][0]) if rows else None


def _open_lmk(
    data_dir: Path, lmk_file: Path | str | None, hint: str | None, allow_in_data_dir: bool
) -> Lmk:
    """FORECOURT_LMK, else the file given, else the one `init` recorded, else
    data_dir/lmk.key (refused unless allowed, like any file inside data_dir)."""
    path = Path(lmk_file) if lmk_file else Path(hint) if hint else default_lmk_path(data_dir)
    if not (lmk_file or hint or os.environ.get(LMK_ENV) or path.exists()):
        raise LmkMissing(
            "no LMK: give the LMK file (--lmk-file PATH, [keys] lmk_file) or set FORECOURT_LMK"
        )
    return load_lmk(path, data_dir=data_dir, allow_in_data_dir=allow_in_data_dir)


def _backend(data_dir: Path, dsn: str | None, create: bool) -> Backend:
    if dsn:
        if not dsn.startswith(("postgresql://", "postgres://")) and "=" not in dsn:
            raise StoreError("database must be a PostgreSQL DSN (postgresql://...)")
        return PostgresBackend(dsn)
    return SqliteBackend(data_dir / STORE_FILE_NAME, create=create)


def open_stamped(
    data_dir: Path | str | None,
    dsn: str | None,
    lmk: Lmk | None,
    lmk_file: Path | str | None,
    allow_lmk_in_data_dir: bool = False,
    key_backend: str = SOFTWARE,
) -> tuple[Backend, Lmk]:
    """An initialised store and its LMK. Raises LmkMissing, LmkInvalid,
    LmkInDataDir, LmkMismatch, StoreNotInitialised, StoreBackendMismatch (a store
    made for another `[keys] backend`)."""
    ddir = _data_dir(data_dir)
    try:
        backend = _backend(ddir, dsn, create=False)
    except StoreNotInitialised:
        if lmk is None:  # no store and no LMK either: `keys init` makes both
            try:
                _open_lmk(ddir, lmk_file, None, allow_lmk_in_data_dir)
            except LmkMissing:
                where = "PostgreSQL" if dsn else str(ddir)
                raise LmkMissing(
                    f"no key store in {where} and no LMK: run `forecourt keys init --config"
                    " FILE --lmk-file PATH` first (the LMK file outside the data directory)"
                ) from None
        raise
    try:
        stamp = _meta(backend, "lmk_kcv")
        if stamp is None:
            raise StoreNotInitialised("key store is not initialised: run 'forecourt keys init'")
        made_for = _meta(backend, "key_backend") or SOFTWARE
        if made_for != key_backend:
            where = "PostgreSQL" if dsn else str(ddir)
            raise StoreBackendMismatch(
                f"the key store in {where} was made for the {made_for} backend, opened with"
                f' backend {key_backend}: set [keys] backend = "{made_for}" (or --backend'
                f" {made_for}), or make a {key_backend} store in another data directory"
            )
        if lmk is None:
            lmk = _open_lmk(ddir, lmk_file, _meta(backend, "lmk_file"), allow_lmk_in_data_dir)
        if stamp != lmk.kcv:
            raise LmkMismatch(
                f"key store was created under LMK with KCV {stamp}, this LMK has KCV {lmk.kcv}"
            )
    except BaseException:
        backend.close()
        raise
    return backend, lmk


def create_stamped(
    data_dir: Path | str | None,
    dsn: str | None,
    lmk: Lmk | None,
    lmk_file: Path | str | None,
    now: float,
    allow_lmk_in_data_dir: bool = False,
    key_backend: str = SOFTWARE,
) -> tuple[Backend, Lmk]:
    """A new store: schema and stamp; the LMK file too unless an LMK is given or
    in the environment (an existing LMK file is reused, never overwritten).
    Raises StoreExists, LmkInDataDir (before anything is written)."""
    ddir = _data_dir(data_dir)
    path = Path(lmk_file) if lmk_file else default_lmk_path(ddir)
    from_file = lmk is None and not os.environ.get(LMK_ENV)
    if from_file:
        check_location(path, ddir, allow_lmk_in_data_dir)
    backend = _backend(ddir, dsn, create=True)
    try:
        backend.create_schema()
        if _meta(backend, "lmk_kcv") is not None:
            raise StoreExists("key store already initialised")
        if lmk is None:
            try:
                lmk = load_lmk(path, data_dir=ddir, allow_in_data_dir=allow_lmk_in_data_dir)
            except KeysError:
                if path.exists() or os.environ.get(LMK_ENV):
                    raise
                lmk = Lmk.generate()
                lmk.write(path)
        meta = [("lmk_kcv", lmk.kcv), ("schema_version", SCHEMA_VERSION), ("created_at", repr(now))]
        if key_backend != SOFTWARE:  # a software store's stamp stays as it always was
            meta.append(("key_backend", key_backend))
        if from_file:
            meta.append(("lmk_file", str(path.resolve())))
        with backend.write() as tx:
            if tx.query("SELECT value FROM key_meta WHERE name = 'lmk_kcv'"):
                raise StoreExists("key store already initialised")
            for name, value in meta:
                tx.execute("INSERT INTO key_meta (name, value) VALUES (?, ?)", (name, value))
    except BaseException:
        backend.close()
        raise
    log.info("key store initialised backend=%s lmk_kcv=%s", backend.name, lmk.kcv)
    return backend, lmk


def device_stamp(backend: Backend, lmk_check: str) -> None:
    """Tie a device store to its HSM's LMK (NC's check value): recorded by the first
    open, compared by every later one, so a store is never used against an HSM
    under another LMK (its blocks would not open there)."""
    recorded = _meta(backend, "device_lmk_check")
    if recorded is None:
        with backend.write() as tx:
            tx.execute(
                "INSERT INTO key_meta (name, value) VALUES (?, ?)", ("device_lmk_check", lmk_check)
            )
    elif recorded != lmk_check:
        raise LmkMismatch(
            f"key store was made on an HSM whose LMK check is {recorded}; this HSM's is"
            f" {lmk_check}: point [keys.payshield] at the HSM the store was made on"
        )
