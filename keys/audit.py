"""The key audit trail (`key_audit`): who changed which key, when and why.

Rows name keys by version and KCV, never by value. The row ids double as a
change feed: a switch node follows rotations made elsewhere through them.
"""

from __future__ import annotations

from forecourt.keys.backend import Tx
from forecourt.keys.key_rows import KeyRef
from forecourt.keys.model import AuditEntry, KeyType


def record(
    tx: Tx,
    now: float,
    actor: str,
    action: str,
    owner: str,
    key_type: KeyType | None = None,
    old: KeyRef | None = None,
    new: KeyRef | None = None,
    reason: str = "",
) -> None:
    tx.execute(
        "INSERT INTO key_audit (at, actor, action, owner, key_type, old_version, old_kcv,"
        " new_version, new_kcv, reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            now,
            actor,
            action,
            owner,
            None if key_type is None else key_type.value,
            None if old is None else old[0],
            None if old is None else old[1],
            None if new is None else new[0],
            None if new is None else new[1],
            reason,
        ),
    )


def entries(tx: Tx, since: float | None = None, owner: str | None = None) -> list[AuditEntry]:
    sql = (
        "SELECT at, actor, action, owner, key_type, old_version, old_kcv, new_version,"
        " new_kcv, reason FROM key_audit WHERE at >= ?"
    )
    params: list[object] = [since if since is not None else 0.0]
    if owner is not None:
        sql += " AND owner = ?"
        params.append(owner)
    return [
        AuditEntry(
            at=float(r[0]),
            actor=str(r[1]),
            action=str(r[2]),
            owner=str(r[3]),
            key_type=None if r[4] is None else KeyType(r[4]),
            old_version=r[5],
            old_kcv=r[6],
            new_version=r[7],
            new_kcv=r[8],
            reason=str(r[9]),
        )
        for r in tx.query(sql + " ORDER BY id", params)
    ]


def mark(tx: Tx) -> int:
    """The newest audit row's id: where `changed_since` starts."""
    rows = tx.query("SELECT max(id) FROM key_audit")
    return int(rows[0][0] or 0) if rows else 0


def changed_since(tx: Tx, since_mark: int) -> tuple[int, set[str]]:
    """Owners with audit rows after `since_mark`, and the new mark."""
    rows = tx.query("SELECT id, owner FROM key_audit WHERE id > ? ORDER BY id", (since_mark,))
    if not rows:
        return since_mark, set()
    return int(rows[-1][0]), {str(r[1]) for r in rows}
