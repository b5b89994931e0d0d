"""The key store as the web console reads it: owners, versions, expiry and the
audit trail, opened without the LMK.

Whoever reads through this holds no LMK and never reads a key block (``key_rows
.infos`` leaves the column out), so a compromise of the console's process gives
ids, versions and KCVs, never a key.
"""

from __future__ import annotations

from pathlib import Path

from forecourt.keys import audit, key_rows, owners
from forecourt.keys.backend import Backend, PostgresBackend, SqliteBackend
from forecourt.keys.model import AuditEntry, KeyInfo, OwnerInfo
from forecourt.keys.stamp import STORE_FILE_NAME


class KeyCatalogue:
    """Read-only metadata of a key store (SQLite in ``data_dir``, or ``dsn``).
    Synchronous; call it from a worker thread."""

    def __init__(self, data_dir: Path, dsn: str | None = None) -> None:
        self._db: Backend = (
            PostgresBackend(dsn) if dsn else SqliteBackend(data_dir / STORE_FILE_NAME)
        )

    def close(self) -> None:
        self._db.close()

    def lmk_kcv(self) -> str | None:
        """The KCV the store was stamped with (which LMK it is under): not a secret."""
        with self._db.read() as tx:
            rows = tx.query("SELECT value FROM key_meta WHERE name = 'lmk_kcv'")
        return str(rows[0][0]) if rows else None

    def keys(self) -> list[KeyInfo]:
        with self._db.read() as tx:
            return key_rows.infos(tx)

    def owners(self) -> list[OwnerInfo]:
        with self._db.read() as tx:
            return owners.listed(tx)

    def audit(self, since: float | None = None) -> list[AuditEntry]:
        with self._db.read() as tx:
            return audit.entries(tx, since)
